"""A database with damaged rows (as an old or hand-edited one holds them): every RPC answers a precise code,
the damaged field reads as its default, start-up reaches SERVING, and probed rows heal at the next scan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.server.app import Daemon
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import style_service_pb2 as style_pb
from diffusiond.v1 import style_service_pb2_grpc as style_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.asset_files import random_vectors, write_embedding
from tests.checkpoints import write_header
from tests.conftest import FAKE_MODEL, StartDaemon
from tests.helpers import collect
from tests.hostile_rows import damage
from tests.lora_files import write_tiny_lora

Call = Callable[[], Awaitable[object]]


async def _answers(chan: grpc.aio.Channel, generation: str) -> dict[str, grpc.StatusCode]:
	"""Every read and write that touches the damaged rows, with the code it answered."""
	models, loras = model_grpc.ModelServiceStub(chan), lora_grpc.LoraServiceStub(chan)
	styles, history = style_grpc.StyleServiceStub(chan), history_grpc.HistoryServiceStub(chan)
	gen, system = gen_grpc.GenerationServiceStub(chan), sys_grpc.SystemServiceStub(chan)
	with_lora = gen_pb.GenerateRequest(prompt='x', steps=1, loras=[gen_pb.LoraRef(lora='ink')])
	with_assets = gen_pb.GenerateRequest(prompt='x inkemb', steps=1, vae='inkvae')
	assets = asset_grpc.AssetServiceStub(chan)
	calls: dict[str, Call] = {
		'ListModels': lambda: models.ListModels(model_pb.ListModelsRequest()),
		'GetModel': lambda: models.GetModel(model_pb.GetModelRequest(model=FAKE_MODEL)),
		'ListLoras': lambda: loras.ListLoras(lora_pb.ListLorasRequest()),
		'GetLora': lambda: loras.GetLora(lora_pb.GetLoraRequest(lora='ink')),
		'ListStyles': lambda: styles.ListStyles(style_pb.ListStylesRequest()),
		'ExportStyles': lambda: styles.ExportStyles(style_pb.ExportStylesRequest()),
		'ListGenerations': lambda: history.ListGenerations(history_pb.ListGenerationsRequest()),
		'GetGeneration': lambda: history.GetGeneration(history_pb.GetGenerationRequest(id=generation)),
		'GetImage': lambda: history.GetImage(history_pb.GetImageRequest(generation_id=generation)),
		'GetUsageStats': lambda: history.GetUsageStats(history_pb.GetUsageStatsRequest()),
		'GetSystemInfo': lambda: system.GetSystemInfo(sys_pb.GetSystemInfoRequest()),
		'ExportArchive': lambda: _drain(history.ExportArchive(history_pb.ExportArchiveRequest(include_images=True))),
		'Regenerate': lambda: collect(history.Regenerate(history_pb.RegenerateRequest(id=generation))),
		'Generate': lambda: collect(gen.Generate(gen_pb.GenerateRequest(prompt='x', steps=1))),
		'Generate+LoRA': lambda: collect(gen.Generate(with_lora)),
		'Generate+assets': lambda: collect(gen.Generate(with_assets)),
		'ListEmbeddings': lambda: assets.ListEmbeddings(asset_pb.ListEmbeddingsRequest()),
		'ListVaes': lambda: assets.ListVaes(asset_pb.ListVaesRequest()),
		'DeleteGeneration': lambda: history.DeleteGeneration(history_pb.DeleteGenerationRequest(id=generation)),
	}
	codes = {}
	for name, call in calls.items():
		try:
			await call()
			codes[name] = grpc.StatusCode.OK
		except grpc.aio.AioRpcError as error:
			codes[name] = error.code()
	return codes


async def _drain(call: grpc.aio.UnaryStreamCall[history_pb.ExportArchiveRequest, history_pb.ArchiveChunk]) -> int:
	return sum([len(chunk.data) async for chunk in call])


async def _serving(daemon: Daemon) -> bool:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		answer = await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest())
	return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


async def test_damaged_rows_degrade_their_fields_not_the_service(start_fake: StartDaemon, tmp_path: Path) -> None:
	write_tiny_lora(tmp_path / 'loras' / 'ink.safetensors')
	write_embedding(tmp_path / 'embeddings' / 'inkemb.safetensors', random_vectors(1, 1))
	write_header(
		tmp_path / 'vaes' / 'inkvae.safetensors',
		{'decoder.conv_in.weight': [64, 4, 3, 3], 'decoder.mid.attn_1.q.weight': [64, 64, 1, 1]},
	)
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		generation = (await collect(gen_grpc.GenerationServiceStub(chan).Generate(gen_pb.GenerateRequest(prompt='x'))))[
			0
		].job_id
		await style_grpc.StyleServiceStub(chan).CreateStyle(style_pb.CreateStyleRequest(style=style_pb.Style(name='A')))
	await damage(daemon.database.sessions)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		record = await history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest())
		before = await _answers(chan, generation)
	assert grpc.StatusCode.INTERNAL not in before.values(), before
	assert grpc.StatusCode.UNKNOWN not in before.values(), before
	assert before['ListModels'] == before['GetModel'] == before['ExportArchive'] == grpc.StatusCode.OK
	assert before['Regenerate'] == grpc.StatusCode.FAILED_PRECONDITION, 'a damaged record is not run again'
	assert before['DeleteGeneration'] == grpc.StatusCode.OK, 'a damaged record can always be removed'
	assert record.generations[0].state == gen_pb.JOB_STATE_FAILED, 'an unknown state reads as failed'
	await daemon.shutdown(0.0)
	again = await asyncio.wait_for(start_fake(), 30)  # the same data dir: start-up reaches SERVING
	assert await _serving(again)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{again.port}') as chan:
		after = await _answers(chan, generation)
		model = (await model_grpc.ModelServiceStub(chan).GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model
		lora = (await lora_grpc.LoraServiceStub(chan).GetLora(lora_pb.GetLoraRequest(lora='ink'))).lora
	assert grpc.StatusCode.INTERNAL not in after.values(), after
	assert after['Generate+LoRA'] == grpc.StatusCode.OK, 'the damaged LoRA row was probed again and healed'
	assert after['Generate+assets'] == grpc.StatusCode.OK, 'the damaged embedding and VAE rows healed too'
	assert (model.status, lora.status) == (model_pb.MODEL_STATUS_READY, model_pb.MODEL_STATUS_READY)
	assert lora.default_weight == 1.0, 'a default weight of 1e30 reads as 1'
	assert not model.defaults.HasField('steps'), 'a default of 100000 steps is not used'
