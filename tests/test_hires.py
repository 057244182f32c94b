"""Hires fix through the stubs on the real tiny pipeline: exactly two direct diffusers calls with an upscale
between (latent and image upscalers), progress over both passes, the infotext, Regenerate, refusals."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from diffusers import AutoPipelineForImage2Image, StableDiffusionPipeline
from PIL import Image

from diffusiond.client import build_generate_request
from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.server.engine.schedulers import make_scheduler
from diffusiond.server.samplers import Sampler
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.helpers import Pixels, collect, pixels, rpc_error

PROMPT = 'a castle on a hill'


def _request(upscaler: str, scale: float | None = None, width: int = 0) -> gen_pb.GenerateRequest:
	fix = gen_pb.HiresFix(upscaler=upscaler, steps=2, denoising_strength=0.6, scale=scale, width=width)
	return gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=7, width=64, height=64, hires=fix)


def _direct(model: Path, upscaler: str) -> Pixels:
	pipe = StableDiffusionPipeline.from_pretrained(
		str(model), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	latent = upscaler.startswith('Latent')
	first = pipe(
		PROMPT,
		width=64,
		height=64,
		num_inference_steps=3,
		generator=[torch.Generator().manual_seed(7)],
		output_type='latent' if latent else 'pil',
	).images
	side = 96 // pipe.vae_scale_factor
	upscaled: torch.Tensor | list[Image.Image] = (
		torch.nn.functional.interpolate(first, size=(side, side), mode='bicubic', antialias=True)
		if latent
		else [first[0].resize((96, 96), resample=Image.Resampling.LANCZOS)]
	)
	second = AutoPipelineForImage2Image.from_pipe(pipe)
	image = second(
		PROMPT, image=upscaled, strength=0.6, num_inference_steps=2, generator=[torch.Generator().manual_seed(7)]
	)
	return np.asarray(image.images[0])


def _image(events: list[gen_pb.GenerateEvent]) -> Pixels:
	return pixels(next(event for event in events if event.HasField('image')).image.data)


@pytest.mark.parametrize('upscaler', ['Latent (bicubic antialiased)', 'Lanczos'])
async def test_hires_fix_is_two_direct_diffusers_calls(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path, upscaler: str
) -> None:
	expected = await asyncio.to_thread(_direct, tiny_sd_dir, upscaler)
	events = await collect(gen.Generate(_request(upscaler, scale=1.5)))
	image = next(event.image for event in events if event.HasField('image'))
	assert (image.width, image.height) == (96, 96)
	assert np.array_equal(pixels(image.data), expected)
	progress = [event.progress for event in events if event.HasField('progress')]
	assert [step.step for step in progress] == [1, 2, 3, 4], 'three first-pass steps, then 2 x 0.6 = 1'
	assert {step.total_steps for step in progress} == {4}
	within = [(gen_pb.Stage.Name(step.stage), step.stage_step, step.stage_steps) for step in progress]
	assert within == [
		('STAGE_DENOISING', 1, 3),
		('STAGE_DENOISING', 2, 3),
		('STAGE_DENOISING', 3, 3),
		('STAGE_SECOND_PASS', 1, 1),
	]
	stages = [(gen_pb.Stage.Name(event.stage.stage), event.stage.steps) for event in events if event.HasField('stage')]
	decoded_first = [('STAGE_DECODING', 0)] if upscaler == 'Lanczos' else []  # an image upscaler decodes pass 1
	assert stages == [
		('STAGE_ENCODING_PROMPT', 0),
		('STAGE_DENOISING', 3),
		*decoded_first,
		('STAGE_UPSCALING', 0),
		('STAGE_SECOND_PASS', 1),
		('STAGE_DECODING', 0),
		('STAGE_ENCODING_IMAGE', 0),
	]


async def test_the_infotext_says_hires_as_a1111_and_regenerate_repeats_it(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	events = await collect(gen.Generate(_request('Latent', width=128)))
	data = next(event for event in events if event.HasField('image')).image.data
	parameters = str(Image.open(io.BytesIO(data)).info['parameters'])
	assert parameters.endswith(
		'Size: 64x64, Model: tiny-sd, Denoising strength: 0.6, Hires resize: 128x128, Hires steps: 2, '
		'Hires upscaler: Latent, Version: diffusiond 0.1.0'
	)
	again = await collect(
		history_grpc.HistoryServiceStub(channel).Regenerate(history_pb.RegenerateRequest(id=events[0].job_id))
	)
	assert np.array_equal(_image(again), _image(events))
	with Image.open(io.BytesIO(data)) as made:
		assert made.size == (128, 128)


@pytest.mark.parametrize(
	('hires', 'image', 'words'),
	[
		(gen_pb.HiresFix(scale=5), b'', 'at most 4'),
		(gen_pb.HiresFix(scale=2, width=128), b'', 'a scale or a width/height'),
		(gen_pb.HiresFix(width=100), b'', 'multiple of 8'),
		(gen_pb.HiresFix(width=4096), b'', 'the upscaled width must be a multiple of 8 between'),
		(gen_pb.HiresFix(), b'png', 'hires applies to text-to-image'),
	],
)
async def test_bad_hires_requests_are_refused_with_the_field(
	gen: gen_grpc.GenerationServiceAsyncStub, hires: gen_pb.HiresFix, image: bytes, words: str
) -> None:
	if image:
		buffer = io.BytesIO()
		Image.new('RGB', (64, 64), 'gray').save(buffer, format='PNG')
		image = buffer.getvalue()
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=2, width=64, height=64, hires=hires, init_image=image)
	error = await rpc_error(collect(gen.Generate(request)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert words in (error.details() or '')


def test_the_client_options_build_the_hires_request() -> None:
	request = build_generate_request('p', hires_scale=1.5, hires_upscaler='Lanczos', hires_steps=4, hires_strength=0.5)
	assert (request.hires.scale, request.hires.upscaler, request.hires.steps) == (1.5, 'Lanczos', 4)
	assert request.hires.denoising_strength == 0.5
	assert not build_generate_request('p').HasField('hires')
	assert build_generate_request('p', hires_width=1024).hires.width == 1024


async def test_the_cli_makes_a_hires_image(daemon: Daemon, tmp_path: Path) -> None:
	out = tmp_path / 'castle.png'
	argv = ['--address', f'127.0.0.1:{daemon.port}', 'generate', PROMPT, '--size', '64x64', '--steps', '2']
	argv += ['--hires-scale', '1.5', '--hires-upscaler', 'Lanczos', '-o', str(out)]
	assert await asyncio.to_thread(ctl, argv) == 0
	with Image.open(out) as made:
		assert made.size == (96, 96)


async def test_the_second_pass_may_have_its_own_prompts_and_sampler(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	second_prompt, second_negative = 'a castle in deep snow, night', 'blurry'

	def direct() -> Pixels:
		pipe = StableDiffusionPipeline.from_pretrained(
			str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False, local_files_only=True
		)
		pipe.set_progress_bar_config(disable=True)
		first = pipe(
			PROMPT,
			width=64,
			height=64,
			num_inference_steps=3,
			generator=[torch.Generator().manual_seed(7)],
			output_type='latent',
		).images
		side = 96 // pipe.vae_scale_factor
		upscaled = torch.nn.functional.interpolate(first, size=(side, side), mode='bilinear')
		second = AutoPipelineForImage2Image.from_pipe(pipe)
		second.scheduler = make_scheduler(Sampler.EULER, pipe.scheduler)
		image = second(
			second_prompt,
			negative_prompt=second_negative,
			image=upscaled,
			strength=0.6,
			num_inference_steps=2,
			generator=[torch.Generator().manual_seed(7)],
		)
		return np.asarray(image.images[0])

	request = _request('Latent', scale=1.5)
	request.hires.prompt, request.hires.negative_prompt = second_prompt, second_negative
	request.hires.sampler = gen_pb.SAMPLER_EULER
	events = await collect(gen.Generate(request))
	assert np.array_equal(_image(events), await asyncio.to_thread(direct))
	data = next(event for event in events if event.HasField('image')).image.data
	parameters = str(Image.open(io.BytesIO(data)).info['parameters'])
	assert (
		'Hires upscaler: Latent, Hires sampler: Euler, Hires prompt: "a castle in deep snow, night", '
		'Hires negative prompt: blurry, Version' in parameters
	)
	tagged = _request('Latent', scale=1.5)
	tagged.hires.prompt = 'x <lora:detail:0.5>'
	error = await rpc_error(collect(gen.Generate(tagged)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'tags go in the main prompt' in (error.details() or '')
