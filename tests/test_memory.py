"""Unloading really frees memory: process RSS returns near its baseline, load after load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import torch

from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.device import release_memory
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import StartReal, model_stubs, stubs
from tests.helpers import collect

MIB = 1 << 20


async def test_unload_returns_memory_to_near_baseline(tmp_path: Path, start_real: StartReal) -> None:
	# Wide enough (~340 MiB of float32 weights) that its memory stands out from the noise.
	build_demo_model(tmp_path / 'models' / 'wide', channels=(256, 512))
	daemon = await start_real({'models': {'load_default_at_start': False}})
	chan, stub = model_stubs(daemon)
	gen_chan, gen = stubs(daemon)
	async with chan, gen_chan:
		system = sys_grpc.SystemServiceStub(chan)

		async def rss() -> int:
			return (await system.GetSystemInfo(sys_pb.GetSystemInfoRequest())).process_rss_bytes

		figures = []
		for _ in range(2):
			await asyncio.to_thread(
				release_memory, torch.device('cpu')
			)  # the baseline without garbage earlier tests left for the collector
			before = await rss()
			await stub.LoadModel(model_pb.LoadModelRequest(model='wide'))
			# One step touches every weight (safetensors maps them lazily).
			await collect(gen.Generate(gen_pb.GenerateRequest(model='wide', prompt='x', steps=1, seed=1)))
			loaded = await rss()
			assert (await stub.UnloadModel(model_pb.UnloadModelRequest(model='wide'))).unloaded
			after = await rss()
			figures.append((before // MIB, loaded // MIB, after // MIB))
			assert loaded - before > 250 * MIB, figures
			assert after - before < (loaded - before) // 4, f'unload kept most of the memory: {figures}'
		(_, _, first_after), (_, _, second_after) = figures
		assert second_after - first_after < 64, f'memory grows load after load: {figures}'
