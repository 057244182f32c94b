"""DownloadModel against a local HTTP server: progress, resume, verification, refusals, tokens, cancel."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from diffusiond.server.app import Daemon
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.checkpoints import fake_checkpoint
from tests.conftest import Overrides, StartDaemon, model_stubs
from tests.helpers import error_details, rpc_status_of
from tests.http_files import FileServer, Route

Events = list[model_pb.DownloadEvent]


@pytest.fixture
def server() -> Iterator[FileServer]:
	with FileServer() as instance:
		yield instance


@pytest.fixture
def body(tmp_path: Path) -> bytes:
	"""A checkpoint as a server would send it: a valid header and 256 KiB of weights."""
	return fake_checkpoint(tmp_path / 'source.safetensors', 'sd1', payload=os.urandom(256 * 1024)).read_bytes()


@pytest.fixture
async def stub(start_fake: StartDaemon) -> AsyncIterator[tuple[Daemon, model_grpc.ModelServiceAsyncStub]]:
	daemon = await start_fake(overrides={'downloads': {'min_bytes': 1024}})
	chan, stub = model_stubs(daemon)
	async with chan:
		yield daemon, stub


async def _download(stub: model_grpc.ModelServiceAsyncStub, request: model_pb.DownloadModelRequest) -> Events:
	return [event async for event in stub.DownloadModel(request)]


async def _failure(
	stub: model_grpc.ModelServiceAsyncStub, request: model_pb.DownloadModelRequest
) -> grpc.aio.AioRpcError:
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await _download(stub, request)
	return caught.value


def _leftovers(daemon: Daemon) -> list[str]:
	return sorted(path.name for path in daemon.settings.storage.models_dir.iterdir() if path.is_file())


async def test_download_streams_progress_and_registers_the_verified_file(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub], server: FileServer, body: bytes
) -> None:
	daemon, models = stub
	url = server.url('/files/model.safetensors', Route(body=body, chunk_delay_s=0.002))
	sha = hashlib.sha256(body).hexdigest()
	events = await _download(models, model_pb.DownloadModelRequest(url=url, sha256=sha.upper()))
	progress = [event.progress for event in events if event.HasField('progress')]
	assert progress[-1].phase == 'verifying'
	assert all(p.total_bytes == len(body) for p in progress)
	assert [p.bytes for p in progress] == sorted(p.bytes for p in progress)
	completed = events[-1].completed
	assert (completed.name, completed.sha256, completed.base) == ('model', sha, model_pb.MODEL_BASE_SD1)
	assert (daemon.settings.storage.models_dir / 'model.safetensors').read_bytes() == body
	assert _leftovers(daemon) == ['model.safetensors'], 'no partial or validator file is left behind'
	again = await _failure(models, model_pb.DownloadModelRequest(url=url))
	assert again.code() == grpc.StatusCode.ALREADY_EXISTS
	replaced = await _download(
		models, model_pb.DownloadModelRequest(url=url, overwrite=True, file_name='sd15/copy.safetensors')
	)
	assert replaced[-1].completed.name == 'sd15/copy'


async def test_an_interrupted_download_resumes_with_range_and_if_range(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub], server: FileServer, body: bytes
) -> None:
	daemon, models = stub
	url = server.url('/flaky.safetensors', Route(body=body, cut_after=100_000))
	error = await _failure(models, model_pb.DownloadModelRequest(url=url))
	assert error.code() == grpc.StatusCode.UNAVAILABLE
	assert error_details(error)[0].reason == 'DOWNLOAD_INTERRUPTED'
	retry = error_details_pb2.RetryInfo()
	assert any(detail.Unpack(retry) for detail in rpc_status_of(error).details)
	assert not (daemon.settings.storage.models_dir / 'flaky.safetensors').exists()
	events = await _download(models, model_pb.DownloadModelRequest(url=url))
	resumed = server.files.requests[-1]
	assert (resumed['range'], resumed['if-range']) == ('bytes=100000-', '"v1"')
	assert [e.progress.resumed_from for e in events if e.HasField('progress') and e.progress.phase == 'downloading'][
		:1
	] in (
		[100_000],
		[],
	)
	assert events[-1].completed.sha256 == hashlib.sha256(body).hexdigest()
	assert (daemon.settings.storage.models_dir / 'flaky.safetensors').read_bytes() == body


async def test_a_changed_file_on_the_server_restarts_the_download(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub], server: FileServer, body: bytes
) -> None:
	_, models = stub
	url = server.url('/changing.safetensors', Route(body=body, cut_after=50_000))
	await _failure(models, model_pb.DownloadModelRequest(url=url))
	new_body = body[:-10] + b'0123456789'
	server.files.routes['/changing.safetensors'] = Route(body=new_body, etag='"v2"')
	events = await _download(models, model_pb.DownloadModelRequest(url=url))
	assert events[-1].completed.sha256 == hashlib.sha256(new_body).hexdigest()


@pytest.mark.parametrize(
	('route', 'extra', 'code', 'words'),
	[
		(
			Route(body=b'<html>please log in</html>' * 100, content_type='text/html'),
			model_pb.DownloadModelRequest(),
			'FAILED_PRECONDITION',
			'text/html',
		),
		(
			Route(body=b'<!DOCTYPE html><html>' + b' ' * 5000),
			model_pb.DownloadModelRequest(),
			'FAILED_PRECONDITION',
			'text document',
		),
		(Route(body=b'\x00' * 100), model_pb.DownloadModelRequest(), 'FAILED_PRECONDITION', 'far too few'),
		(Route(body=b'x' * 5000), model_pb.DownloadModelRequest(), 'FAILED_PRECONDITION', 'not valid safetensors'),
		(
			Route(body=b'secret' * 1000, token='s3cret'),
			model_pb.DownloadModelRequest(),
			'UNAUTHENTICATED',
			'DIFFUSIOND_DOWNLOADS__TOKENS',
		),
		(Route(body=b'x', status=200), model_pb.DownloadModelRequest(sha256='abc'), 'INVALID_ARGUMENT', '64 hex'),
		(
			Route(body=b'x'),
			model_pb.DownloadModelRequest(file_name='../escape.safetensors'),
			'INVALID_ARGUMENT',
			'inside',
		),
		(Route(body=b'x'), model_pb.DownloadModelRequest(file_name='model.ckpt'), 'INVALID_ARGUMENT', '.safetensors'),
		(
			Route(body=b'x'),
			model_pb.DownloadModelRequest(file_name='a/.hidden.safetensors'),
			'INVALID_ARGUMENT',
			'hidden',
		),
	],
)
async def test_refusals_leave_nothing_behind(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub],
	server: FileServer,
	route: Route,
	extra: model_pb.DownloadModelRequest,
	code: str,
	words: str,
) -> None:
	daemon, models = stub
	url = server.url('/file.safetensors', route)
	request = model_pb.DownloadModelRequest(url=url)
	request.MergeFrom(extra)
	error = await _failure(models, request)
	assert error.code() == getattr(grpc.StatusCode, code)
	assert words in str(error.details())
	assert [name for name in _leftovers(daemon) if not name.startswith('.')] == []
	assert not (daemon.settings.storage.models_dir.parent / 'escape.safetensors').exists()


async def test_wrong_hash_is_discarded(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub], server: FileServer, body: bytes
) -> None:
	daemon, models = stub
	url = server.url('/m.safetensors', Route(body=body))
	error = await _failure(models, model_pb.DownloadModelRequest(url=url, sha256='0' * 64))
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'discarded' in str(error.details())
	assert _leftovers(daemon) == []


async def test_bad_urls_missing_files_and_size_cap(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub], server: FileServer, body: bytes
) -> None:
	_, models = stub
	malformed = (
		'http://[::1/x.safetensors',
		'https://h:99999/x.safetensors',
		'http://h/x\x01.safetensors',
		'http://h/a b',
	)
	for url in ('ftp://example.com/x.safetensors', 'not a url', '', *malformed):
		assert (
			await _failure(models, model_pb.DownloadModelRequest(url=url))
		).code() == grpc.StatusCode.INVALID_ARGUMENT
	missing = await _failure(models, model_pb.DownloadModelRequest(url=server.base + '/nothing.safetensors'))
	assert missing.code() == grpc.StatusCode.NOT_FOUND
	nameless = server.url('/api/download/42', Route(body=body))
	error = await _failure(models, model_pb.DownloadModelRequest(url=nameless))
	assert 'give file_name' in str(error.details())
	named = server.url(
		'/api/download/43', Route(body=body, disposition='attachment; filename="civitai-model.safetensors"')
	)
	assert (await _download(models, model_pb.DownloadModelRequest(url=named)))[-1].completed.name == 'civitai-model'


async def test_size_cap_and_bearer_tokens_per_host(start_fake: StartDaemon, server: FileServer, body: bytes) -> None:
	overrides: Overrides = {'downloads': {'min_bytes': 1024, 'max_bytes': 10_000, 'tokens': {'127.0.0.1': 's3cret'}}}
	daemon = await start_fake(overrides=overrides)
	chan, models = model_stubs(daemon)
	async with chan:
		big = server.url('/big.safetensors', Route(body=body))
		assert (
			await _failure(models, model_pb.DownloadModelRequest(url=big))
		).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
		small = fake_checkpoint(
			daemon.settings.storage.data_dir / 'small.safetensors', payload=b'w' * 4000
		).read_bytes()
		private = server.url('/private.safetensors', Route(body=small, token='s3cret'))
		events = await _download(models, model_pb.DownloadModelRequest(url=private))
		assert events[-1].completed.name == 'private'
		assert server.files.requests[-1]['authorization'] == 'Bearer s3cret'
		hop = server.url('/hop.safetensors', Route(body=b'', location='/private.safetensors'))
		refused = await _failure(models, model_pb.DownloadModelRequest(url=hop, file_name='hop.safetensors'))
		assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, 'a token is never sent on to a redirect target'


async def test_cancelling_the_call_stops_the_transfer_and_keeps_the_partial_file(
	stub: tuple[Daemon, model_grpc.ModelServiceAsyncStub], server: FileServer, body: bytes
) -> None:
	daemon, models = stub
	url = server.url('/slow.safetensors', Route(body=body, chunk_delay_s=0.01))
	call = models.DownloadModel(model_pb.DownloadModelRequest(url=url))
	async for event in call:
		if event.progress.bytes > 0:
			break
	call.cancel()
	models_dir = daemon.settings.storage.models_dir
	sizes = []
	for _ in range(100):  # the transfer stops within a chunk: the partial file stops growing
		sizes.append(sum(path.stat().st_size for path in models_dir.glob('.download-*.part')))
		if len(sizes) > 3 and sizes[-1] == sizes[-4]:
			break
		await asyncio.sleep(0.05)
	assert 0 < sizes[-1] < len(body)
	assert not (models_dir / 'slow.safetensors').exists()
	server.files.routes['/slow.safetensors'] = Route(body=body)
	events = await _download(models, model_pb.DownloadModelRequest(url=url))
	assert events[-1].completed.sha256 == hashlib.sha256(body).hexdigest()
