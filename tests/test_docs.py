"""docs/API.md is generated from protos/ and kept true; every service and RPC carries a comment."""

from docs.api_reference import OUTPUT, render, undocumented


def test_api_reference_is_up_to_date() -> None:
	assert OUTPUT.read_text() == render(), 'docs/API.md is stale: run make docs'


def test_every_service_and_rpc_is_documented() -> None:
	assert undocumented() == []


def test_api_reference_covers_every_rpc_and_error_reason() -> None:
	text = OUTPUT.read_text()
	for heading in ('#### GenerationService.Generate', '#### HistoryService.ImportArchive', '#### SystemService.'):
		assert heading in text
	assert '`READER_STALLED`' in text
	assert '`DEADLINE_TOO_SHORT`' in text
