"""LoraService through the generated stubs: listing, filters, lookups by hash, updates, deletes, batches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2

from diffusiond.server.app import Daemon
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.checkpoints import fake_lora
from tests.conftest import StartDaemon
from tests.helpers import rpc_error

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


@pytest.fixture
async def served(start_fake: StartDaemon) -> AsyncIterator[tuple[Daemon, lora_grpc.LoraServiceAsyncStub]]:
	daemon = await start_fake()
	loras = daemon.settings.storage.loras_dir
	tags = json.dumps({'train': {'foxy': 9, 'red fur': 3}})
	fake_lora(loras / 'style' / 'fox.safetensors', 'sd1', {'ss_tag_frequency': tags, 'ss_output_name': 'foxy'})
	fake_lora(loras / 'xl-detail.safetensors', 'sdxl')
	fake_lora(loras / 'sd2-light.safetensors', 'sd2')
	(loras / 'old.pt').write_bytes(b'pickle')
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		stub = lora_grpc.LoraServiceStub(chan)
		assert (await stub.RefreshLoras(lora_pb.RefreshLorasRequest())).added == 4
		yield daemon, stub


async def _names(stub: lora_grpc.LoraServiceAsyncStub, request: lora_pb.ListLorasRequest) -> list[str]:
	return [lora.name for lora in (await stub.ListLoras(request)).loras]


async def test_list_filters_and_pages(served: tuple[Daemon, lora_grpc.LoraServiceAsyncStub]) -> None:
	_, stub = served
	assert await _names(stub, lora_pb.ListLorasRequest()) == ['old', 'sd2-light', 'style/fox', 'xl-detail']
	assert await _names(stub, lora_pb.ListLorasRequest(base=model_pb.MODEL_BASE_SDXL)) == ['xl-detail']
	assert await _names(stub, lora_pb.ListLorasRequest(query='FOXY')) == ['style/fox']  # output name, triggers
	first = await stub.ListLoras(lora_pb.ListLorasRequest(page_size=3))
	rest = await stub.ListLoras(lora_pb.ListLorasRequest(page_size=3, page_token=first.next_page_token))
	assert (len(first.loras), len(rest.loras), rest.next_page_token, first.total_size) == (3, 1, '', 4)
	fox = (await stub.GetLora(lora_pb.GetLoraRequest(lora='style/fox'))).lora
	assert (fox.base, fox.format, fox.rank, fox.text_encoder) == (
		model_pb.MODEL_BASE_SD1,
		lora_pb.LORA_FORMAT_KOHYA,
		8,
		True,
	)
	assert list(fox.suggested_trigger_words) == list(fox.trigger_words) == ['foxy', 'red fur']
	old = (await stub.GetLora(lora_pb.GetLoraRequest(lora='old'))).lora
	assert (old.status, old.format) == (model_pb.MODEL_STATUS_UNSAFE, lora_pb.LORA_FORMAT_PICKLE)


async def test_hashes_arrive_in_the_background_and_find_the_lora(
	served: tuple[Daemon, lora_grpc.LoraServiceAsyncStub],
) -> None:
	_, stub = served
	for _ in range(200):
		fox = (await stub.GetLora(lora_pb.GetLoraRequest(lora='style/fox'))).lora
		if fox.short_hash:
			break
		await asyncio.sleep(0.02)
	assert len(fox.short_hash) == 12
	assert fox.addnet_hash.startswith(fox.short_hash)
	for ref in (fox.short_hash, fox.sha256[:8], fox.id):
		assert (await stub.GetLora(lora_pb.GetLoraRequest(lora=ref))).lora.id == fox.id
	missing = await rpc_error(stub.GetLora(lora_pb.GetLoraRequest(lora='nope')))
	assert missing.code() == grpc.StatusCode.NOT_FOUND
	assert 'loras list' in str(missing.details())


async def test_updates_and_their_validation(served: tuple[Daemon, lora_grpc.LoraServiceAsyncStub]) -> None:
	_, stub = served
	lora = lora_pb.Lora(
		id='style/fox', display_name='Fox', tags=['animal'], trigger_words=['fox girl'], default_weight=0.7
	)
	updated = (await stub.UpdateLora(lora_pb.UpdateLoraRequest(lora=lora))).lora
	assert (updated.display_name, list(updated.tags), list(updated.trigger_words)) == ('Fox', ['animal'], ['fox girl'])
	assert updated.default_weight == pytest.approx(0.7)
	assert updated.enabled is False  # an empty mask sets all five fields
	assert await _names(stub, lora_pb.ListLorasRequest(enabled=False)) == ['style/fox']
	assert await _names(stub, lora_pb.ListLorasRequest(tag='animal')) == ['style/fox']
	reset = lora_pb.UpdateLoraRequest(
		lora=lora_pb.Lora(name='style/fox', enabled=True),
		update_mask=field_mask_pb2.FieldMask(paths=['trigger_words', 'enabled']),
	)
	restored = (await stub.UpdateLora(reset)).lora
	assert (list(restored.trigger_words), restored.enabled) == (['foxy', 'red fur'], True)
	for bad, field in (
		(lora_pb.Lora(id='style/fox', default_weight=2.5), 'default_weight'),
		(lora_pb.Lora(id='style/fox', tags=['']), 'lora.tags'),
	):
		error = await rpc_error(stub.UpdateLora(lora_pb.UpdateLoraRequest(lora=bad)))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert field in str(error.details())


async def test_delete_and_batches_report_per_entry(served: tuple[Daemon, lora_grpc.LoraServiceAsyncStub]) -> None:
	daemon, stub = served
	loras = daemon.settings.storage.loras_dir
	await stub.DeleteLora(lora_pb.DeleteLoraRequest(lora='sd2-light'))
	assert (loras / 'sd2-light.safetensors').exists()
	assert (await stub.RefreshLoras(lora_pb.RefreshLorasRequest())).added == 0
	batch = lora_pb.BatchUpdateLorasRequest(
		loras=['style/fox', 'missing', 'xl-detail'], action=lora_pb.BATCH_ACTION_DISABLE
	)
	results = (await stub.BatchUpdateLoras(batch)).results
	assert [(r.lora, r.code, r.reason) for r in results] == [
		('style/fox', code_pb2.OK, ''),
		('missing', code_pb2.NOT_FOUND, 'LORA_NOT_FOUND'),
		('xl-detail', code_pb2.OK, ''),
	]
	assert await _names(stub, lora_pb.ListLorasRequest(enabled=True)) == ['old']
	remove = lora_pb.BatchUpdateLorasRequest(loras=['style/fox'], action=lora_pb.BATCH_ACTION_DELETE, delete_files=True)
	assert (await stub.BatchUpdateLoras(remove)).results[0].code == code_pb2.OK
	assert not (loras / 'style' / 'fox.safetensors').exists()
	empty = await rpc_error(stub.BatchUpdateLoras(lora_pb.BatchUpdateLorasRequest(loras=['x'])))
	assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
	back = await stub.RefreshLoras(lora_pb.RefreshLorasRequest(restore_unregistered=True))
	assert back.restored == 1
