"""Memory planned before a job runs: the estimate and which savers make a job fit (plain unit tests); on the real tiny
pipeline with a memory budget, a large job runs with attention slicing and VAE tiling (said in `started`) and the
next small job gives exactly the baseline pixels; a job that cannot fit even so is refused at submission with
RESOURCE_EXHAUSTED naming the size that would fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from diffusiond.server.app import Daemon
from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.engine.memory_savers import pipeline_shape
from diffusiond.server.jobs.engine_api import PreviewHook, RunOutput, StageHook, StepHook
from diffusiond.server.jobs.memory import (
	ATTENTION_SLICING,
	SAVERS,
	VAE_SLICING,
	VAE_TILING,
	estimate,
	family_shape,
	largest_fitting,
	savers_for,
)
from diffusiond.server.schemas import JobSpec
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.conftest import TINY_MODEL, StartDaemon, StartReal, stubs, write_fake_model
from tests.helpers import collect, error_details, next_of, pixels, until_error

MIB = 2**20


def test_the_savers_lower_the_peak_and_are_chosen_in_order_where_they_help() -> None:
	shape = family_shape(ModelBase.SD1, 2)
	big = estimate(1024, 1024, 4, True, shape)
	assert big.peak([]) > big.peak([ATTENTION_SLICING]) > big.peak([ATTENTION_SLICING, VAE_SLICING])
	assert big.peak([ATTENTION_SLICING, VAE_SLICING]) > big.peak(list(SAVERS))
	assert savers_for(big, big.peak([]) + 1) == []
	assert savers_for(big, big.peak(list(SAVERS))) == list(SAVERS)
	one = estimate(1024, 1024, 1, True, shape)
	assert VAE_SLICING not in savers_for(one, 1), 'slicing a batch of one image helps nothing'
	assert savers_for(one, 1, kept=[ATTENTION_SLICING]) == [VAE_TILING], 'what the settings keep on is not chosen'


def test_the_largest_size_that_fits_fits_and_the_next_does_not() -> None:
	shape = family_shape(ModelBase.SDXL, 2)
	budget = 3 * 2**30
	side = largest_fitting(1, True, shape, budget)
	assert 512 <= side < 4096
	assert estimate(side, side, 1, True, shape).peak(list(SAVERS)) <= budget
	assert estimate(side + 64, side + 64, 1, True, shape).peak(list(SAVERS)) > budget
	assert largest_fitting(1, True, shape, 1) == 0


async def test_a_large_job_runs_with_the_savers_it_needs_and_they_come_off(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	shape = pipeline_shape(
		StableDiffusionPipeline.from_pretrained(str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False),
		torch.float32,
	)
	found = estimate(160, 160, 1, True, shape)  # past the tiny VAE's 32-pixel tile
	budget = max(estimate(64, 64, 1, True, shape).peak([]), found.peak([ATTENTION_SLICING, VAE_TILING]))
	assert found.unet([]) > budget >= found.unet([ATTENTION_SLICING]), 'the UNet phase needs attention slicing'
	assert found.vae([]) > budget >= found.vae([VAE_TILING]), 'the decode needs tiling'
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	daemon = await start_real({'device': {'memory_budget_bytes': budget}})
	small = gen_pb.GenerateRequest(prompt='a fox', steps=2, seed=5, width=64, height=64)
	large = gen_pb.GenerateRequest(prompt='a fox', steps=2, seed=5, width=160, height=160)
	chan, stub = stubs(daemon)
	async with chan:
		before = await collect(stub.Generate(small))
		big = await collect(stub.Generate(large))
		after = await collect(stub.Generate(small))
	savers = [list(next(e.started for e in events if e.HasField('started')).memory_savers) for events in (before, big)]
	assert savers == [[], [ATTENTION_SLICING, VAE_TILING]]
	assert big[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert pixels(next(e.image.data for e in big if e.HasField('image'))).shape == (160, 160, 3)
	image_before = pixels(next(e.image.data for e in before if e.HasField('image')))
	np.testing.assert_array_equal(pixels(next(e.image.data for e in after if e.HasField('image'))), image_before)
	engine = daemon.engine
	assert isinstance(engine, DiffusersEngine)
	pipe = engine.active_pipeline()
	assert pipe is not None
	assert not pipe.vae.use_tiling, 'VAE tiling is off again'


async def test_a_dynamic_batch_that_would_not_fit_is_split(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal, monkeypatch: pytest.MonkeyPatch
) -> None:
	"""Two queued jobs that would batch (device.batch_max_images) run in two calls when one call of both would not
	fit the budget even with every saver on; each alone does."""
	pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False)
	shape = pipeline_shape(pipe, torch.float32)
	images = next(
		n
		for n in range(1, 5)
		if estimate(64, 64, 2 * n, True, shape).peak(list(SAVERS)) > estimate(64, 64, n, True, shape).peak(list(SAVERS))
	)
	budget = estimate(64, 64, images, True, shape).peak(list(SAVERS))
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	daemon = await start_real({'device': {'memory_budget_bytes': budget, 'batch_max_images': 8}})
	engine = daemon.engine
	assert isinstance(engine, DiffusersEngine)
	calls: list[list[str]] = []  # the prompts of each pipeline call (an observation: the call itself runs)
	run = engine.run

	def recorded(
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...] = (),
	) -> RunOutput:
		calls.append([spec.prompt for spec in specs])
		return run(specs, on_step, on_previews, on_stage, savers)

	monkeypatch.setattr(engine, 'run', recorded)
	chan, stub = stubs(daemon)
	async with chan:
		blocker = stub.Generate(gen_pb.GenerateRequest(prompt='blocker', steps=30, width=64, height=64))
		await next_of(blocker, 'started')
		requests = [
			gen_pb.GenerateRequest(prompt=prompt, steps=3, width=64, height=64, num_images=images) for prompt in 'ab'
		]
		calls_made = []
		for request in requests:  # one after the other: two calls started together reach the queue in either order
			calls_made.append(stub.Generate(request))
			await next_of(calls_made[-1], 'queued')
		await collect(blocker)
		ended = [await collect(call) for call in calls_made]
	assert calls == [['blocker'], ['a'], ['b']], 'two calls, not one of both'
	assert [events[-1].completed.state for events in ended] == [gen_pb.JOB_STATE_SUCCEEDED] * 2


async def test_a_job_that_cannot_fit_is_refused_naming_the_size_that_would(
	tmp_path: Path, start_fake: StartDaemon
) -> None:
	write_fake_model(tmp_path / 'models' / 'sd15', cross_attention_dim=768)  # an SD1-family model
	daemon: Daemon = await start_fake(overrides={'device': {'memory_budget_bytes': 1024 * MIB}})
	chan, stub = stubs(daemon)
	async with chan:
		_, refused = await until_error(stub.Generate(gen_pb.GenerateRequest(model='sd15', width=2048, height=2048)))
		fits = await collect(stub.Generate(gen_pb.GenerateRequest(model='sd15', width=512, height=512, steps=2)))
	assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
	info, _ = error_details(refused)
	assert info.reason == 'MEMORY_BUDGET_EXCEEDED'
	side = int(info.metadata['max_size'].split('x')[0])
	assert 512 <= side < 2048
	assert f'at most about {side}x{side} fits' in str(refused.details())
	assert fits[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
