"""CancelJob(finish_early): a running job stops at the next step and delivers its image as it is, exactly what
diffusers gives when interrupted after the same step; history keeps it as a cancelled job with its image."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline

from diffusiond.server.engine.schedulers import make_scheduler
from diffusiond.server.samplers import Sampler
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.helpers import Pixels, pixels

PROMPT = 'a harbour at night'
STEPS = 150  # the most a request may ask: about a second of work, ~100 times what the cancel takes


def _interrupted(model: Path, done: int) -> Pixels:
	pipe = StableDiffusionPipeline.from_pretrained(
		str(model), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	pipe.scheduler = make_scheduler(Sampler.EULER, pipe.scheduler)  # as the daemon makes it

	def stop(
		pipeline: DiffusionPipeline, step: int, timestep: torch.Tensor, kwargs: dict[str, torch.Tensor]
	) -> dict[str, torch.Tensor]:
		if step + 1 == done:
			pipeline._interrupt = True
		return kwargs

	image = pipe(
		PROMPT,
		width=64,
		height=64,
		num_inference_steps=STEPS,
		generator=[torch.Generator().manual_seed(3)],
		callback_on_step_end=stop,
	)
	return np.asarray(image.images[0])


async def test_finish_early_delivers_the_image_as_it_is(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel, tiny_sd_dir: Path
) -> None:
	request = gen_pb.GenerateRequest(
		prompt=PROMPT, steps=STEPS, seed=3, width=64, height=64, sampler=gen_pb.SAMPLER_EULER
	)
	call = gen.Generate(request)
	events: list[gen_pb.GenerateEvent] = []
	async for event in call:
		events.append(event)
		if event.HasField('progress') and event.progress.step >= 3:
			answer = await gen.CancelJob(gen_pb.CancelJobRequest(job_id=event.job_id, finish_early=True))
			assert answer.previous_state == gen_pb.JOB_STATE_RUNNING
			break
	events += [event async for event in call]
	last = max(event.progress.step for event in events if event.HasField('progress'))
	assert last < STEPS, 'it stopped early'
	images = [event.image for event in events if event.HasField('image')]
	assert len(images) == 1
	completed = events[-1].completed
	assert completed.state == gen_pb.JOB_STATE_CANCELLED
	assert completed.storage == gen_pb.STORAGE_STATE_STORED
	expected = await asyncio.to_thread(_interrupted, tiny_sd_dir, last + 1)  # the step that saw the request ran
	assert np.array_equal(pixels(images[0].data), expected)
	record = await history_grpc.HistoryServiceStub(channel).GetGeneration(
		history_pb.GetGenerationRequest(id=events[0].job_id)
	)
	assert record.generation.state == gen_pb.JOB_STATE_CANCELLED
	assert len(record.generation.images) == 1
