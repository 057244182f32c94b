"""Generate through the real server and the real tiny pipeline on CPU."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.conftest import TINY_MODEL
from tests.helpers import collect, kinds, pixels

PROMPT = 'a red fox in the snow'


async def test_event_order_and_contents(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=4, seed=1234, num_images=2, sampler=gen_pb.SAMPLER_EULER)
	events = await collect(gen.Generate(request))
	order = kinds(events)
	assert order[0] == 'queued'
	assert order[1] == 'started'
	assert order[-3:] == ['image', 'image', 'completed']
	assert set(order[2:-3]) == {'progress', 'stage'}
	stages = [gen_pb.Stage.Name(event.stage.stage) for event in events if event.HasField('stage')]
	assert stages == ['STAGE_ENCODING_PROMPT', 'STAGE_DENOISING', 'STAGE_DECODING', 'STAGE_ENCODING_IMAGE']
	assert len({event.job_id for event in events}) == 1
	assert events[0].queued.position == 1
	started = events[1].started
	assert started.model == TINY_MODEL
	assert list(started.seeds) == [1234, 1235]
	assert started.scheduler == 'EulerDiscreteScheduler'
	assert (started.width, started.height, started.steps) == (64, 64, 4)
	progress = [event.progress for event in events if event.HasField('progress')]
	assert progress[-1].step == progress[-1].total_steps == 4
	assert all(p.elapsed_seconds >= 0 and p.eta_seconds >= 0 for p in progress)
	images = [event.image for event in events if event.HasField('image')]
	assert [(i.index, i.seed, i.mime_type, i.width, i.height) for i in images] == [
		(0, 1234, 'image/png', 64, 64),
		(1, 1235, 'image/png', 64, 64),
	]
	assert pixels(images[0].data).shape == (64, 64, 3)
	completed = events[-1].completed
	assert completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert completed.timings.total_seconds >= completed.timings.inference_seconds > 0


async def test_random_seed_is_reported_and_reproduces(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	first = await collect(gen.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=3)))
	seed = first[1].started.seeds[0]
	again = await collect(gen.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=seed)))
	image_first = next(e.image for e in first if e.HasField('image'))
	image_again = next(e.image for e in again if e.HasField('image'))
	assert image_first.seed == image_again.seed == seed
	assert np.array_equal(pixels(image_first.data), pixels(image_again.data))  # the metadata names each job


async def test_different_seeds_differ(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	events = await collect(gen.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=5, num_images=2)))
	a, b = (pixels(e.image.data) for e in events if e.HasField('image'))
	assert not np.array_equal(a, b)


async def test_pixels_equal_a_direct_diffusers_call(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	request = gen_pb.GenerateRequest(
		prompt=PROMPT, negative_prompt='blurry', steps=5, seed=42, num_images=2, guidance_scale=6.0, width=64, height=72
	)
	events = await collect(gen.Generate(request))
	served = [pixels(e.image.data) for e in events if e.HasField('image')]
	pipe = StableDiffusionPipeline.from_pretrained(
		str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	direct = pipe(
		prompt=PROMPT,
		negative_prompt='blurry',
		width=64,
		height=72,
		num_inference_steps=5,
		guidance_scale=6.0,
		num_images_per_prompt=2,
		generator=[torch.Generator('cpu').manual_seed(seed) for seed in (42, 43)],
	).images
	assert len(served) == 2
	for ours, theirs in zip(served, direct, strict=True):
		np.testing.assert_array_equal(ours, np.asarray(theirs))


@pytest.mark.parametrize('sampler', [s for s in gen_pb.Sampler.values() if s != gen_pb.SAMPLER_UNSPECIFIED])
async def test_every_sampler_runs(gen: gen_grpc.GenerationServiceAsyncStub, sampler: gen_pb.Sampler.ValueType) -> None:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=1, sampler=sampler)
	events = await collect(gen.Generate(request))
	started = events[1].started
	assert started.sampler == sampler
	assert started.scheduler.endswith('Scheduler')
	image = next(e.image for e in events if e.HasField('image'))
	assert pixels(image.data).std() > 0
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


async def test_unspecified_sampler_uses_the_model_scheduler(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	events = await collect(gen.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=2, seed=1)))
	assert events[1].started.scheduler == 'PNDMScheduler'


@pytest.mark.parametrize(
	('fmt', 'mime', 'magic'),
	[
		(gen_pb.IMAGE_FORMAT_JPEG, 'image/jpeg', b'\xff\xd8'),
		(gen_pb.IMAGE_FORMAT_WEBP, 'image/webp', b'RIFF'),
		(gen_pb.IMAGE_FORMAT_PNG, 'image/png', b'\x89PNG'),
	],
)
async def test_output_formats(
	gen: gen_grpc.GenerationServiceAsyncStub, fmt: gen_pb.ImageFormat.ValueType, mime: str, magic: bytes
) -> None:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=2, seed=3, output_format=fmt)
	if fmt != gen_pb.IMAGE_FORMAT_PNG:
		request.quality = 80
	image = next(e.image for e in await collect(gen.Generate(request)) if e.HasField('image'))
	assert image.mime_type == mime
	assert image.data.startswith(magic)
	assert pixels(image.data).shape == (64, 64, 3)


async def test_unknown_model_is_not_found(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	for name in ('no-such-model', '../../etc', '/etc'):
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(gen.Generate(gen_pb.GenerateRequest(model=name, prompt=PROMPT)))
		assert caught.value.code() == grpc.StatusCode.NOT_FOUND
		assert 'models folder' in str(caught.value.details()) or TINY_MODEL in str(caught.value.details())


async def test_named_model_resolves(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	events = await collect(gen.Generate(gen_pb.GenerateRequest(model=TINY_MODEL, prompt=PROMPT, steps=1)))
	assert events[1].started.model == TINY_MODEL
