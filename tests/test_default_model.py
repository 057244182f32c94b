"""The default model is one that loads: models that cannot load show UNLOADABLE with the reason, are never
chosen, and GetSystemInfo names the model a plain Generate uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.checkpoints import fake_checkpoint
from tests.conftest import TINY_MODEL, StartReal
from tests.helpers import collect


async def test_unloadable_models_are_never_the_default(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	models = tmp_path / 'models'
	shutil.copytree(tiny_sd_dir, models / TINY_MODEL)
	broken = shutil.copytree(tiny_sd_dir, models / 'aaa-broken-weights')  # sorts first; its weights are garbage
	for weights in broken.rglob('*.safetensors'):
		weights.write_bytes(b'not safetensors at all' * 10)
	fake_checkpoint(models / 'aab-single-without-configs.safetensors', base='unknown')  # no family: no configs
	fake_checkpoint(models / 'aac-sd1-without-weights.safetensors')  # configs shipped, but only a header
	daemon = await start_real()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		info = await sys_grpc.SystemServiceStub(chan).GetSystemInfo(sys_pb.GetSystemInfoRequest())
		listed = {
			m.name: m for m in (await model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest())).models
		}
		single = (
			await model_grpc.ModelServiceStub(chan).GetModel(
				model_pb.GetModelRequest(model='aab-single-without-configs')
			)
		).model
		events = await collect(
			gen_grpc.GenerationServiceStub(chan).Generate(gen_pb.GenerateRequest(prompt='x', steps=1))
		)
	assert info.default_model == TINY_MODEL
	assert events[1].started.model == TINY_MODEL, 'a plain Generate uses the model GetSystemInfo names'
	assert listed[TINY_MODEL].status == model_pb.MODEL_STATUS_READY
	assert listed['aaa-broken-weights'].status == model_pb.MODEL_STATUS_UNLOADABLE
	assert 'aaa-broken-weights' in listed['aaa-broken-weights'].problem, 'the reason names the model'
	assert single.status == model_pb.MODEL_STATUS_UNLOADABLE
	assert 'needs component configs' in single.problem
	assert listed['aac-sd1-without-weights'].status == model_pb.MODEL_STATUS_UNLOADABLE
	assert 'could not be loaded' in listed['aac-sd1-without-weights'].problem, 'its load was tried and failed'
