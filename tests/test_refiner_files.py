"""SDXL refiner single files: recognised by their 1280-wide cross-attention, given the shipped refiner configs
(an img2img pipeline with one text encoder), listed ready, never the default, and refused for txt2img."""

from __future__ import annotations

import json

import grpc

from diffusiond.server.catalog.configs import config_names
from diffusiond.server.catalog.probe import probe_file
from diffusiond.server.catalog.schemas import ModelBase, is_refiner
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.checkpoints import fake_checkpoint
from tests.conftest import StartDaemon
from tests.helpers import collect, error_details, rpc_error


async def test_a_refiner_file_gets_the_refiner_configs_and_refines_only(start_fake: StartDaemon) -> None:
	daemon = await start_fake(wait=False)
	path = fake_checkpoint(daemon.settings.storage.models_dir / 'refiner.safetensors', 'sdxl-refiner')
	probe = probe_file(path)
	assert (probe.base, probe.arch.cross_attention_dim, probe.native_size) == (ModelBase.SDXL, 1280, 1024)
	assert is_refiner(probe.base, probe.arch)
	await daemon.catalog.refresh()
	record = await daemon.catalog.get('refiner')
	assert config_names(record) == ['sdxl-refiner']
	assert [item.name for item in await daemon.catalog.candidates()] == ['fake-model'], 'never the refiner'
	info = await daemon.catalog.info(record)
	assert info.config_dir is not None
	index = json.loads((info.config_dir / 'model_index.json').read_text())
	assert index['_class_name'] == 'StableDiffusionXLImg2ImgPipeline'
	assert index['text_encoder'] == [None, None]
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		listed = await model_grpc.ModelServiceStub(channel).GetModel(model_pb.GetModelRequest(model='refiner'))
		assert listed.model.status == model_pb.MODEL_STATUS_READY
		request = gen_pb.GenerateRequest(model='refiner', prompt='a fox', steps=2)
		error = await rpc_error(collect(gen_grpc.GenerationServiceStub(channel).Generate(request)))
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert error_details(error)[0].reason == 'MODEL_NOT_LOADABLE'
	assert 'SDXL refiner' in (error.details() or '')
