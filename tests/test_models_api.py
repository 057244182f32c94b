"""ModelService through the generated stubs: listing, lookups, updates, deletes, unsafe files."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable

import grpc
from google.protobuf import field_mask_pb2

from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.checkpoints import fake_checkpoint
from tests.conftest import FAKE_MODEL, StartDaemon, model_stubs, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, rpc_error

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


async def _start_with_files(start_fake: StartDaemon, backend: FakeEngine | None = None) -> Daemon:
	daemon = await start_fake(backend)
	models = daemon.settings.storage.models_dir
	fake_checkpoint(models / 'sd15' / 'dreamshaper.safetensors', 'sd1', payload=b'dream')
	fake_checkpoint(models / 'sd2.safetensors', 'sd2', payload=b'sd2')
	fake_checkpoint(models / 'xl' / 'juggernaut.safetensors', 'sdxl', payload=b'xl')
	fake_checkpoint(models / 'inpaint.safetensors', 'sd1', inpainting=True)
	(models / 'old.ckpt').write_bytes(b'never unpickled by a scan')
	return daemon


async def test_list_filters_pages_and_refresh_counts(start_fake: StartDaemon) -> None:
	daemon = await _start_with_files(start_fake)
	chan, stub = model_stubs(daemon)
	async with chan:
		refreshed = await stub.RefreshModels(model_pb.RefreshModelsRequest())
		assert (refreshed.added, refreshed.unchanged) == (5, 1)
		names: list[str] = []
		token = ''
		while True:
			page = await stub.ListModels(model_pb.ListModelsRequest(page_size=2, page_token=token))
			assert page.total_size == 6
			names += [model.name for model in page.models]
			token = page.next_page_token
			if not token:
				break
		assert names == [FAKE_MODEL, 'inpaint', 'old', 'sd15/dreamshaper', 'sd2', 'xl/juggernaut']
		xl = await stub.ListModels(model_pb.ListModelsRequest(base=model_pb.MODEL_BASE_SDXL))
		assert [(m.name, m.native_size, m.format) for m in xl.models] == [
			('xl/juggernaut', 1024, model_pb.MODEL_FORMAT_SAFETENSORS)
		]
		folders = await stub.ListModels(model_pb.ListModelsRequest(format=model_pb.MODEL_FORMAT_DIFFUSERS))
		assert [m.name for m in folders.models] == [FAKE_MODEL]
		loaded = await stub.ListModels(model_pb.ListModelsRequest(loaded_only=True))
		assert [(m.name, m.loaded, m.active) for m in loaded.models] == [(FAKE_MODEL, True, True)]
		unsafe = (await stub.GetModel(model_pb.GetModelRequest(model='old'))).model
		assert (unsafe.format, unsafe.status) == (model_pb.MODEL_FORMAT_PICKLE, model_pb.MODEL_STATUS_UNSAFE)
		error = await rpc_error(stub.ListModels(model_pb.ListModelsRequest(page_size=-1)))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_by_id_name_or_hash_prefix(start_fake: StartDaemon) -> None:
	daemon = await _start_with_files(start_fake)
	chan, stub = model_stubs(daemon)
	async with chan:
		await stub.RefreshModels(model_pb.RefreshModelsRequest())
		for _ in range(200):  # the background hasher gets to it without being asked
			by_name = (await stub.GetModel(model_pb.GetModelRequest(model='sd15/dreamshaper'))).model
			if by_name.sha256:
				break
			await asyncio.sleep(0.02)
		path = daemon.settings.storage.models_dir / 'sd15' / 'dreamshaper.safetensors'
		assert by_name.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
		assert by_name.short_hash == by_name.sha256[:10]
		assert by_name.base == model_pb.MODEL_BASE_SD1
		for ref in (by_name.id, by_name.short_hash, by_name.sha256):
			assert (await stub.GetModel(model_pb.GetModelRequest(model=ref))).model.id == by_name.id
		for ref, code in (
			('nope', grpc.StatusCode.NOT_FOUND),
			('../../etc/passwd', grpc.StatusCode.NOT_FOUND),
			('', grpc.StatusCode.INVALID_ARGUMENT),
		):
			assert (await rpc_error(stub.GetModel(model_pb.GetModelRequest(model=ref)))).code() == code


async def test_generate_resolves_models_by_hash_and_applies_their_defaults(start_fake: StartDaemon) -> None:
	backend = FakeEngine()
	daemon = await start_fake(backend)
	chan, stub = model_stubs(daemon)
	gen_chan, gen = stubs(daemon)
	async with chan, gen_chan:
		model = (await stub.GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model
		defaults = model_pb.ModelDefaults(sampler=gen_pb.SAMPLER_EULER_A, steps=3, guidance_scale=2.5)
		update = model_pb.UpdateModelRequest(
			model=model_pb.Model(id=model.id, display_name='Fake', tags=['test', 'fake', 'test'], defaults=defaults)
		)
		updated = (await stub.UpdateModel(update)).model
		assert (updated.display_name, list(updated.tags), updated.defaults.steps) == ('Fake', ['test', 'fake'], 3)
		await collect(gen.Generate(gen_pb.GenerateRequest(model=model.id, prompt='x', seed=1)))
		await collect(gen.Generate(gen_pb.GenerateRequest(model=FAKE_MODEL, prompt='x', steps=5, guidance_scale=0)))
		first, second = backend.runs
		assert (first.steps, first.guidance_scale, first.sampler.value) == (3, 2.5, 'Euler a')
		assert (second.steps, second.guidance_scale) == (5, 0.0)  # the request's own values win
		used = (await stub.ListModels(model_pb.ListModelsRequest(order_by=model_pb.MODEL_ORDER_LAST_USED))).models
		assert used[0].name == FAKE_MODEL
		assert used[0].HasField('last_used_time')
		only_name = model_pb.UpdateModelRequest(
			model=model_pb.Model(name=FAKE_MODEL, display_name='Renamed'),
			update_mask=field_mask_pb2.FieldMask(paths=['display_name']),
		)
		renamed = (await stub.UpdateModel(only_name)).model
		assert (renamed.display_name, renamed.defaults.steps) == ('Renamed', 3)


async def test_bad_updates_name_the_field(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, stub = model_stubs(daemon)
	async with chan:
		cases = [
			(model_pb.Model(id=FAKE_MODEL), ['path'], 'update_mask'),
			(model_pb.Model(id=FAKE_MODEL, defaults=model_pb.ModelDefaults(steps=0)), [], 'defaults.steps'),
			(model_pb.Model(id=FAKE_MODEL, tags=['ok', ' ']), ['tags'], 'model.tags'),
			(model_pb.Model(), [], 'model.id'),
		]
		for model, paths, field in cases:
			request = model_pb.UpdateModelRequest(model=model, update_mask=field_mask_pb2.FieldMask(paths=paths))
			error = await rpc_error(stub.UpdateModel(request))
			assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
			assert field in str(error.details())


async def test_delete_unregisters_and_removes_files_only_when_asked(start_fake: StartDaemon) -> None:
	daemon = await _start_with_files(start_fake)
	await daemon.catalog.refresh()
	models_dir = daemon.settings.storage.models_dir
	chan, stub = model_stubs(daemon)
	async with chan:
		kept = await stub.DeleteModel(model_pb.DeleteModelRequest(model='sd2'))
		assert kept.model.name == 'sd2'
		assert (models_dir / 'sd2.safetensors').exists()
		assert (await stub.RefreshModels(model_pb.RefreshModelsRequest())).added == 0
		assert (
			await rpc_error(stub.GetModel(model_pb.GetModelRequest(model='sd2')))
		).code() == grpc.StatusCode.NOT_FOUND
		restored = await stub.RefreshModels(model_pb.RefreshModelsRequest(restore_unregistered=True))
		assert restored.restored == 1
		await stub.DeleteModel(model_pb.DeleteModelRequest(model='xl/juggernaut', delete_files=True))
		assert not (models_dir / 'xl' / 'juggernaut.safetensors').exists()
		await stub.DeleteModel(model_pb.DeleteModelRequest(model=FAKE_MODEL, delete_files=True))
		assert not (models_dir / FAKE_MODEL).exists()
		assert (await stub.RefreshModels(model_pb.RefreshModelsRequest())).removed == 0
		names = [m.name for m in (await stub.ListModels(model_pb.ListModelsRequest())).models]
		assert names == ['inpaint', 'old', 'sd15/dreamshaper', 'sd2']


async def test_models_that_cannot_load_fail_precondition_with_the_cause(start_fake: StartDaemon) -> None:
	daemon = await _start_with_files(start_fake)
	fake_checkpoint(daemon.settings.storage.models_dir / 'odd.safetensors', 'unknown')
	await daemon.catalog.refresh()
	chan, stub = model_stubs(daemon)
	gen_chan, gen = stubs(daemon)
	async with chan, gen_chan:
		expected = {
			'old': ('MODEL_UNSAFE', 'ALLOW_PICKLE', True),
			'inpaint': ('MODEL_NOT_LOADABLE', 'inpainting', False),  # it loads (shipped configs), it only inpaints
			'odd': ('MODEL_NOT_LOADABLE', 'configs', True),  # single file of no known family: no configs anywhere
		}
		for name, (reason, words, load_too) in expected.items():
			calls: list[Awaitable[object]] = [collect(gen.Generate(gen_pb.GenerateRequest(model=name, prompt='x')))]
			if load_too:
				calls.append(stub.LoadModel(model_pb.LoadModelRequest(model=name)))
			for call in calls:
				error = await rpc_error(call)
				assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
				assert error_details(error)[0].reason == reason
				assert words in str(error.details())


async def test_load_and_unload_through_the_cache(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides={'models': {'load_default_at_start': False}})
	chan, stub = model_stubs(daemon)
	async with chan:
		cold = await stub.LoadModel(model_pb.LoadModelRequest(model=FAKE_MODEL))
		assert (cold.cold, cold.model.loaded, cold.model.active) == (True, True, True)
		warm = await stub.LoadModel(model_pb.LoadModelRequest(model=FAKE_MODEL))
		assert warm.cold is False
		assert (await stub.UnloadModel(model_pb.UnloadModelRequest(model=FAKE_MODEL))).unloaded is True
		assert (await stub.UnloadModel(model_pb.UnloadModelRequest(model=FAKE_MODEL))).unloaded is False
		assert not (await stub.GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model.loaded


async def test_new_files_are_found_without_a_refresh_and_changed_ones_leave_the_cache(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	models_dir = daemon.settings.storage.models_dir
	chan, stub = model_stubs(daemon)
	async with chan:
		fake_checkpoint(models_dir / 'late.safetensors', 'sdxl')
		assert (await stub.GetModel(model_pb.GetModelRequest(model='late'))).model.base == model_pb.MODEL_BASE_SDXL
		assert (await stub.GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model.loaded
		(models_dir / FAKE_MODEL / 'unet' / 'config.json').write_text(
			'{"cross_attention_dim": 768, "in_channels": 4, "block_out_channels": [320], "sample_size": 64}'
		)
		refreshed = await stub.RefreshModels(model_pb.RefreshModelsRequest())
		assert refreshed.changed == 1
		replaced = (await stub.GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model
		assert (replaced.loaded, replaced.base) == (False, model_pb.MODEL_BASE_SD1), 'a replaced model is not reused'
