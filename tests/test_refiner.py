"""The SDXL refiner pass (diffusers' ensemble of experts) through the stubs on tiny SDXL base and refiner models
made in the test run: exactly the direct two-call recipe, progress and stages, the infotext, refusals."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
from PIL import Image

from diffusiond.client import build_generate_request
from diffusiond.client.cli_args import build_parser
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.conftest import StartReal
from tests.helpers import Pixels, collect, pixels, rpc_error
from tests.sdxl_tiny import build_refiner, build_sdxl

PROMPT = 'a mountain lake at dawn'


def _direct(models: Path) -> Pixels:
	base = StableDiffusionXLPipeline.from_pretrained(str(models / 'xl-base'), local_files_only=True)
	refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(str(models / 'xl-refiner'), local_files_only=True)
	for pipe in (base, refiner):
		pipe.set_progress_bar_config(disable=True)
	latents = base(
		PROMPT,
		width=64,
		height=64,
		num_inference_steps=10,
		denoising_end=0.7,
		output_type='latent',
		guidance_scale=6.0,
		generator=[torch.Generator().manual_seed(3)],
	).images
	image = refiner(
		PROMPT,
		image=latents,
		num_inference_steps=10,
		denoising_start=0.7,
		guidance_scale=6.0,
		generator=[torch.Generator().manual_seed(3)],
	)
	return np.asarray(image.images[0])


async def test_the_refiner_finishes_exactly_as_the_two_call_recipe(tmp_path: Path, start_real: StartReal) -> None:
	models = tmp_path / 'models'
	build_sdxl().save_pretrained(str(models / 'xl-base'))
	build_refiner().save_pretrained(str(models / 'xl-refiner'))
	daemon = await start_real()
	expected = await asyncio.to_thread(_direct, models)  # after the daemon fixed torch's threads, as it runs
	refiner = gen_pb.RefinerPass(model='xl-refiner', switch_at=0.7)
	request = gen_pb.GenerateRequest(
		model='xl-base', prompt=PROMPT, steps=10, seed=3, width=64, height=64, guidance_scale=6.0, refiner=refiner
	)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		gen = gen_grpc.GenerationServiceStub(channel)
		events = await collect(gen.Generate(request))
		image = next(event.image for event in events if event.HasField('image'))
		assert np.array_equal(pixels(image.data), expected)
		progress = [event.progress for event in events if event.HasField('progress')]
		assert progress[-1].step == progress[-1].total_steps == 10
		last = progress[-1]
		assert (gen_pb.Stage.Name(last.stage), last.stage_step, last.stage_steps) == ('STAGE_REFINING', 3, 3)
		stages = [gen_pb.Stage.Name(event.stage.stage) for event in events if event.HasField('stage')]
		assert stages == [
			'STAGE_ENCODING_PROMPT',
			'STAGE_DENOISING',
			'STAGE_REFINING',
			'STAGE_DECODING',
			'STAGE_ENCODING_IMAGE',
		]
		parameters = str(Image.open(io.BytesIO(image.data)).info['parameters'])
		assert 'Refiner: xl-refiner' in parameters
		assert 'Refiner switch at: 0.7' in parameters
		again = await collect(gen.Generate(request))
		assert np.array_equal(pixels(next(e.image for e in again if e.HasField('image')).data), expected), 'cached'
		for bad, words in (
			(gen_pb.RefinerPass(model='xl-refiner', switch_at=1.0), 'switch_at must be above 0 and below 1'),
			(gen_pb.RefinerPass(model='nosuchmodel'), 'no model has'),
		):
			refused = gen_pb.GenerateRequest(model='xl-base', prompt=PROMPT, steps=4, width=64, height=64, refiner=bad)
			error = await rpc_error(collect(gen.Generate(refused)))
			assert words in (error.details() or '')
		hires = gen_pb.GenerateRequest(
			model='xl-base', prompt=PROMPT, steps=4, width=64, height=64, refiner=refiner, hires=gen_pb.HiresFix()
		)
		error = await rpc_error(collect(gen.Generate(hires)))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert 'plain text-to-image' in (error.details() or '')


def test_the_refiner_options_build_the_request() -> None:
	request = build_generate_request('p', refiner=('xl-refiner', 0.75))
	assert (request.refiner.model, request.refiner.switch_at) == ('xl-refiner', 0.75)
	assert not build_generate_request('p').HasField('refiner')
	args = build_parser().parse_args(['generate', 'p', '--refiner', 'xl-refiner'])
	assert args.refiner == ('xl-refiner', 0.8)
