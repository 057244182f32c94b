"""Loading real pipelines: single-file checkpoints offline, the LRU cache, pickle safety."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
import torch
from safetensors.torch import load_file

from diffusiond.server.app import Daemon
from diffusiond.server.catalog.configs import BUILTIN, find_config_dir
from diffusiond.server.catalog.schemas import Architecture, ModelBase, ModelRecord
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import TINY_MODEL, Overrides, StartReal, model_stubs, stubs
from tests.helpers import collect, error_details, pixels, rpc_error
from tests.ldm import write_single_file

SINGLE = 'tiny-single'


class _Evil:
	"""Unpickling this runs code: it must never happen."""

	def __init__(self, marker: Path) -> None:
		self.marker = marker

	def __reduce__(self) -> tuple[object, tuple[str]]:
		return exec, (f'open({str(self.marker)!r}, "w").write("pwned")',)


@pytest.fixture(scope='module')
def single_file(tiny_sd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
	return write_single_file(tiny_sd_dir, tmp_path_factory.mktemp('single') / f'{SINGLE}.safetensors')


@pytest.fixture
async def start(tmp_path: Path, tiny_sd_dir: Path, single_file: Path, start_real: StartReal) -> StartReal:
	"""A real daemon over a data dir holding the tiny folder (the default model) and its single-file twin."""
	models = tmp_path / 'models'
	shutil.copytree(tiny_sd_dir, models / TINY_MODEL)
	shutil.copy(single_file, models / single_file.name)

	async def run(overrides: Overrides | None = None) -> Daemon:
		merged = overrides or {}
		merged['models'] = {'default_model': TINY_MODEL, **merged.get('models', {})}
		return await start_real(merged)

	return run


async def test_single_file_checkpoint_loads_offline_and_matches_its_folder(start: StartReal) -> None:
	daemon = await start()
	chan, gen = stubs(daemon)
	async with chan:
		images = []
		for model in (TINY_MODEL, SINGLE):
			request = gen_pb.GenerateRequest(model=model, prompt='a fox', steps=3, seed=7, width=64, height=64)
			events = await collect(gen.Generate(request))
			images.append(pixels(events[-2].image.data))
			assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
		assert (images[0] == images[1]).all(), 'the single file must give the same pixels as its diffusers folder'


async def test_cache_keeps_recent_models_and_evicts_the_oldest(start: StartReal) -> None:
	daemon = await start({'models': {'cache_max_models': 1}})
	chan, stub = model_stubs(daemon)
	async with chan:
		system = sys_grpc.SystemServiceStub(chan)
		info = await system.GetSystemInfo(sys_pb.GetSystemInfoRequest())
		assert [(m.name, m.active) for m in info.loaded_models] == [(TINY_MODEL, True)]
		assert info.model_cache_bytes == info.loaded_models[0].bytes > 0
		assert info.model_cache_max_models == 1
		loaded = await stub.LoadModel(model_pb.LoadModelRequest(model=SINGLE))
		assert loaded.cold
		info = await system.GetSystemInfo(sys_pb.GetSystemInfoRequest())
		assert [m.name for m in info.loaded_models] == [SINGLE], 'a cache of one evicts the older model'
		assert info.memory_total_bytes >= info.memory_available_bytes > 0


async def test_switching_between_cached_models_is_warm(start: StartReal) -> None:
	daemon = await start({'models': {'cache_max_models': 2}})
	chan, stub = model_stubs(daemon)
	async with chan:
		first = await stub.LoadModel(model_pb.LoadModelRequest(model=SINGLE))
		back = await stub.LoadModel(model_pb.LoadModelRequest(model=TINY_MODEL))
		again = await stub.LoadModel(model_pb.LoadModelRequest(model=SINGLE))
		assert (first.cold, back.cold, again.cold) == (True, False, False)
		assert again.load_seconds < first.load_seconds
		listed = await stub.ListModels(model_pb.ListModelsRequest(loaded_only=True))
		assert sorted((m.name, m.active) for m in listed.models) == [(TINY_MODEL, False), (SINGLE, True)]


async def test_a_failed_load_keeps_the_previous_model_usable(start: StartReal) -> None:
	daemon = await start()
	broken = daemon.settings.storage.models_dir / 'broken'
	shutil.copytree(daemon.settings.storage.models_dir / TINY_MODEL, broken)
	(broken / 'unet' / 'diffusion_pytorch_model.safetensors').write_bytes(b'\x08' + b'\x00' * 7 + b'garbage!')
	chan, stub = model_stubs(daemon)
	gen_chan, gen = stubs(daemon)
	async with chan, gen_chan:
		await stub.RefreshModels(model_pb.RefreshModelsRequest())
		error = await rpc_error(stub.LoadModel(model_pb.LoadModelRequest(model='broken')))
		assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
		assert "'broken' could not be loaded" in str(error.details())
		request = gen_pb.GenerateRequest(model=TINY_MODEL, prompt='still fine', steps=2, seed=1)
		assert (await collect(gen.Generate(request)))[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


@pytest.mark.parametrize('allow', [False, True])
async def test_a_malicious_pickle_never_runs(start: StartReal, tmp_path: Path, allow: bool) -> None:
	marker = tmp_path / 'pwned'
	daemon = await start({'models': {'allow_pickle': allow}})
	torch.save(
		{'state_dict': {'weight': torch.zeros(2)}, 'payload': _Evil(marker)},
		daemon.settings.storage.models_dir / 'evil.ckpt',
	)
	chan, stub = model_stubs(daemon)
	async with chan:
		await stub.RefreshModels(model_pb.RefreshModelsRequest())
		model = (await stub.GetModel(model_pb.GetModelRequest(model='evil'))).model
		assert model.status == model_pb.MODEL_STATUS_UNSAFE
		error = await rpc_error(stub.LoadModel(model_pb.LoadModelRequest(model='evil')))
		assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
		assert error_details(error)[0].reason == ('MODEL_NOT_LOADABLE' if allow else 'MODEL_UNSAFE')
		if allow:
			assert 'weights_only' in str(error.details())
	assert not marker.exists(), 'the pickle payload ran'


async def test_an_allowed_plain_pickle_loads_with_weights_only(start: StartReal, single_file: Path) -> None:
	daemon = await start({'models': {'allow_pickle': True}})
	torch.save({'state_dict': load_file(single_file)}, daemon.settings.storage.models_dir / 'tiny-pickle.ckpt')
	chan, stub = model_stubs(daemon)
	gen_chan, gen = stubs(daemon)
	async with chan, gen_chan:
		await stub.RefreshModels(model_pb.RefreshModelsRequest())
		images = []
		for name in (TINY_MODEL, 'tiny-pickle'):
			request = gen_pb.GenerateRequest(model=name, prompt='a fox', steps=2, seed=3, width=64, height=64)
			images.append(pixels((await collect(gen.Generate(request)))[-2].image.data))
		assert (images[0] == images[1]).all()
		found = (await stub.GetModel(model_pb.GetModelRequest(model='tiny-pickle'))).model
		assert (found.status, found.format) == (model_pb.MODEL_STATUS_UNSAFE, model_pb.MODEL_FORMAT_PICKLE)


def test_config_folders_come_from_the_configs_dir_first(tmp_path: Path, tiny_sd_dir: Path) -> None:
	record = ModelRecord.model_validate(
		{
			'id': 'x',
			'name': 'x',
			'path': 'x.safetensors',
			'format': 'safetensors',
			'base': 'sd1',
			'status': 'ready',
			'problem': '',
			'inpainting': False,
			'demo': False,
			'native_size': 512,
			'size_bytes': 1,
			'mtime_ns': 1,
			'arch': Architecture(),
			'sha256': None,
			'display_name': '',
			'tags': [],
			'defaults': {},
			'added_at': '2026-01-01T00:00:00Z',
			'last_used_at': None,
		}
	)
	assert record.base is ModelBase.SD1
	configs, hub = tmp_path / 'configs', tmp_path / 'hub'
	assert find_config_dir(configs, record, [], hub) == configs / BUILTIN / 'sd1', 'the shipped configs, last'
	snapshot = hub / 'models--stable-diffusion-v1-5--stable-diffusion-v1-5' / 'snapshots' / 'abc123'
	shutil.copytree(tiny_sd_dir, snapshot, ignore=shutil.ignore_patterns('*.safetensors'))
	assert find_config_dir(configs, record, [], hub) == snapshot
	assert find_config_dir(configs, record, [tiny_sd_dir], hub) == tiny_sd_dir
	shutil.copytree(tiny_sd_dir, configs / 'sd1', ignore=shutil.ignore_patterns('*.safetensors'))
	assert find_config_dir(configs, record, [tiny_sd_dir], hub) == configs / 'sd1'
	inpainting = record.model_copy(update={'inpainting': True})
	assert find_config_dir(configs, inpainting, [], hub) == configs / BUILTIN / 'sd1-inpainting'
	unknown = record.model_copy(update={'base': ModelBase.UNKNOWN})
	assert find_config_dir(configs, unknown, [], hub) is None
