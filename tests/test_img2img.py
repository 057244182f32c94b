"""img2img on the real tiny pipeline: equal to a direct diffusers img2img call; sizes and validation."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionImg2ImgPipeline
from PIL import Image

from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.badfiles import png_bomb
from tests.helpers import collect, error_details, kinds, pixels, until_error

PROMPT = 'a red fox in the snow'


def _source(width: int, height: int, format: str = 'PNG') -> tuple[bytes, Image.Image]:
	rng = np.random.default_rng(7)
	image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), 'RGB')
	buffer = io.BytesIO()
	image.save(buffer, format=format)
	return buffer.getvalue(), Image.open(io.BytesIO(buffer.getvalue())).convert('RGB')


async def test_img2img_equals_a_direct_diffusers_call(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	data, source = _source(64, 64)
	request = gen_pb.GenerateRequest(
		prompt=PROMPT, steps=8, seed=5, sampler=gen_pb.SAMPLER_EULER, init_image=data, strength=0.5, preview_every=1
	)
	events = await collect(gen.Generate(request))
	served = pixels(next(event.image.data for event in events if event.HasField('image')))
	progress = [event.progress for event in events if event.HasField('progress')]
	pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
		str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
	pipe.set_progress_bar_config(disable=True)
	direct = pipe(
		prompt=PROMPT,
		image=source,
		strength=0.5,
		num_inference_steps=8,
		generator=[torch.Generator('cpu').manual_seed(5)],
	).images[0]
	np.testing.assert_array_equal(served, np.asarray(direct))
	assert progress[-1].total_steps == 4, 'strength 0.5 of 8 steps runs 4'
	assert any(event.HasField('preview') for event in events)


async def test_init_image_size_rules(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	odd, _ = _source(70, 75, 'JPEG')
	own = await collect(gen.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=2, init_image=odd)))
	started = next(event.started for event in own if event.HasField('started'))
	assert (started.width, started.height) == (64, 72), 'rounded down to multiples of 8'
	resized = await collect(
		gen.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=2, init_image=odd, width=96, height=64))
	)
	image = next(event.image for event in resized if event.HasField('image'))
	assert (image.width, image.height) == (96, 64)
	assert kinds(resized)[-1] == 'completed'


async def test_bad_init_images_and_strength_are_refused(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	cases = [
		(gen_pb.GenerateRequest(prompt='x', init_image=b'garbage'), grpc.StatusCode.INVALID_ARGUMENT, 'init_image'),
		(gen_pb.GenerateRequest(prompt='x', init_image=png_bomb()), grpc.StatusCode.RESOURCE_EXHAUSTED, ''),
		(gen_pb.GenerateRequest(prompt='x', strength=0.5), grpc.StatusCode.INVALID_ARGUMENT, 'strength'),
		(
			gen_pb.GenerateRequest(prompt='x', init_image=_source(64, 64)[0], strength=1.5),
			grpc.StatusCode.INVALID_ARGUMENT,
			'strength',
		),
	]
	for request, code, field in cases:
		_, error = await until_error(gen.Generate(request))
		assert error.code() == code
		info, fields = error_details(error)
		assert field in fields if field else info.reason == 'IMAGE_TOO_LARGE'


async def test_img2img_is_recorded_with_its_strength_and_not_regenerated(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=4, seed=9, init_image=_source(64, 64)[0], strength=0.6)
	events = await collect(gen.Generate(request))
	history = history_grpc.HistoryServiceStub(channel)
	record = (await history.GetGeneration(history_pb.GetGenerationRequest(id=events[-1].job_id))).generation
	image = next(event.image.data for event in events if event.HasField('image'))
	_, error = await until_error(history.Regenerate(history_pb.RegenerateRequest(id=record.id)))
	with Image.open(io.BytesIO(image)) as opened:
		assert 'Denoising strength: 0.6' in opened.info['parameters']
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'init image is not stored' in str(error.details())


async def test_cli_img2img(daemon: Daemon, tmp_path: Path) -> None:
	source = tmp_path / 'sketch.png'
	source.write_bytes(_source(64, 64)[0])
	out = tmp_path / 'fox.png'
	argv = ['--address', f'127.0.0.1:{daemon.port}', 'generate', 'a fox', '-o', str(out), '--steps', '4']
	code = await asyncio.to_thread(ctl, [*argv, '--init-image', str(source), '--strength', '0.5'])
	assert code == 0
	with Image.open(out) as image:
		assert 'Denoising strength: 0.5' in image.info['parameters']
