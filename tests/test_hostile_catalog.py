"""Hostile files in models/ and loras/: each is listed invalid with its reason, the scan goes on, lookups
stay precise, and start-up reaches SERVING with the usable model as the default (a real daemon too)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import FAKE_MODEL, StartDaemon
from tests.helpers import rpc_error
from tests.hostile_files import hostile_loras, hostile_models
from tests.processes import spawn_daemon


async def test_hostile_files_are_listed_invalid_and_the_rest_serves(start_fake: StartDaemon, tmp_path: Path) -> None:
	names = hostile_models(tmp_path / 'models')
	loras = hostile_loras(tmp_path / 'loras')
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		health = await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest())
		stub = model_grpc.ModelServiceStub(chan)
		await stub.RefreshModels(model_pb.RefreshModelsRequest())
		listed = {model.name: model for model in (await stub.ListModels(model_pb.ListModelsRequest())).models}
		missing = await rpc_error(stub.GetModel(model_pb.GetModelRequest(model='no-such-model')))
		info = await sys_grpc.SystemServiceStub(chan).GetSystemInfo(sys_pb.GetSystemInfoRequest())
		lora_stub = lora_grpc.LoraServiceStub(chan)
		await lora_stub.RefreshLoras(lora_pb.RefreshLorasRequest())
		listed_loras = {lora.name: lora for lora in (await lora_stub.ListLoras(lora_pb.ListLorasRequest())).loras}
	assert health.status == health_pb2.HealthCheckResponse.SERVING
	for name in names:
		assert name in listed, f'{name} is listed'
		assert listed[name].status == model_pb.MODEL_STATUS_INVALID, name
		assert listed[name].problem, f'{name} says why'
	assert listed[FAKE_MODEL].status == model_pb.MODEL_STATUS_READY
	assert 'incomplete diffusers folder' in listed['aaa-half-copied'].problem
	assert 'not valid UTF-8' in listed['bad\\xff-name'].problem
	assert info.default_model == FAKE_MODEL, 'a half-copied folder that sorts first is never the default'
	assert missing.code() == grpc.StatusCode.NOT_FOUND
	for name, usable in loras.items():
		status = lora_pb.Lora().status if name not in listed_loras else listed_loras[name].status
		expected = model_pb.MODEL_STATUS_READY if usable else model_pb.MODEL_STATUS_INVALID
		assert status == expected, name
	assert not listed_loras['odd-alpha'].HasField('alpha')


async def test_a_real_daemon_starts_serving_over_hostile_folders(tmp_path: Path) -> None:
	hostile_models(tmp_path / 'models')
	hostile_loras(tmp_path / 'loras')
	process, address = await spawn_daemon(tmp_path)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			health = health_pb2_grpc.HealthStub(chan)
			for _ in range(300):
				answer = await health.Check(health_pb2.HealthCheckRequest())
				if answer.status == health_pb2.HealthCheckResponse.SERVING:
					break
				await asyncio.sleep(0.1)
			models = (await model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest())).models
	finally:
		process.terminate()
		await asyncio.wait_for(process.wait(), 60)
	assert answer.status == health_pb2.HealthCheckResponse.SERVING
	assert all(model.status == model_pb.MODEL_STATUS_INVALID for model in models)
	assert len(models) == 13
	assert process.returncode == 0
