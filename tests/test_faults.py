"""Faults inside a job: device out of memory fails that job alone, and the next one is untouched."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import torch

from diffusiond.server.app import Daemon
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.engine.factory import cache_bounds
from diffusiond.server.jobs.engine_api import PreviewHook, RunOutput, StageHook, StepHook
from diffusiond.server.schemas import JobSpec
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.conftest import TINY_MODEL, make_settings, stubs
from tests.helpers import collect, error_details, pixels


class OutOfMemory(DiffusersEngine):
	"""The real engine, except that the second step of its next `failures` denoising attempts raises the device's
	out-of-memory error."""

	failures = 0

	def run(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...] = (),
	) -> RunOutput:
		def failing(step: int, total: int) -> bool:
			if step == 2 and self.failures:
				self.failures -= 1
				raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB (simulated)')
			return on_step(step, total)

		return super().run(specs, failing, on_previews, on_stage, savers)


@pytest.fixture
async def oom_daemon(tiny_sd_dir: Path, tmp_path: Path) -> AsyncIterator[Daemon]:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	settings = make_settings(tmp_path)
	bounds = cache_bounds(settings)
	backend = OutOfMemory(torch.device('cpu'), torch.float32, PipelineCache(bounds.max_models, bounds.max_bytes))
	daemon = Daemon(settings, backend)
	await daemon.start()
	await daemon.ready.wait()
	yield daemon
	await daemon.shutdown(0.0)


async def test_out_of_memory_runs_again_with_the_savers_then_fails_the_job_alone(
	oom_daemon: Daemon, gen: gen_grpc.GenerationServiceAsyncStub
) -> None:
	request = gen_pb.GenerateRequest(prompt='a fox', steps=4, seed=11)
	engine = oom_daemon.engine
	assert isinstance(engine, OutOfMemory)
	chan, stub = stubs(oom_daemon)
	async with chan:
		engine.failures = 1
		retried = await collect(stub.Generate(request))
		engine.failures = 2
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(stub.Generate(request))
		after = await collect(stub.Generate(request))
	assert retried[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert any(
		'ran again with attention slicing, VAE slicing, VAE tiling' in notice
		for notice in retried[-1].completed.notices
	)
	assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
	assert error_details(caught.value)[0].reason == 'DEVICE_OUT_OF_MEMORY'
	assert 'also with every memory saver on' in str(caught.value.details())
	assert after[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert not after[-1].completed.notices
	baseline = await collect(gen.Generate(request))  # another daemon, same weights, never out of memory
	image = next(event.image.data for event in after if event.HasField('image'))
	expected = next(event.image.data for event in baseline if event.HasField('image'))
	assert (pixels(image) == pixels(expected)).all(), 'the savers were taken off again'
