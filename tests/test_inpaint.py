"""Inpainting on the real tiny pipeline: equal to a direct diffusers call, the black area kept exactly."""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import grpc
import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
from PIL import Image, ImageFilter

from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.server.engine.demo import build_pipeline
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import TINY_MODEL, StartReal, stubs
from tests.helpers import Pixels, collect, error_details, pixels, until_error
from tests.test_img2img import PROMPT, _source


def _mask(width: int, height: int) -> tuple[bytes, Image.Image]:
	"""White (repaint) on the right half, with a grey edge that the threshold must split at 128."""
	values = np.zeros((height, width), dtype=np.uint8)
	values[:, width // 2 :] = 255
	values[:, width // 2 - 1] = 127  # kept
	values[:, width // 2] = 128  # repainted
	image = Image.fromarray(values, 'L')
	buffer = io.BytesIO()
	image.save(buffer, format='PNG')
	return buffer.getvalue(), image


def _direct(folder: Path, source: Image.Image, mask: Image.Image, strength: float, crop: int | None = None) -> Pixels:
	"""The same job as a direct diffusers call, the kept area pasted back as the daemon does."""
	pipe = StableDiffusionInpaintPipeline.from_pretrained(
		str(folder), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
	pipe.set_progress_bar_config(disable=True)
	direct = pipe(
		prompt=PROMPT,
		image=source,
		mask_image=mask,
		strength=strength,
		num_inference_steps=6,
		width=64,
		height=64,
		padding_mask_crop=crop,
		generator=[torch.Generator('cpu').manual_seed(11)],
	).images[0]
	return np.asarray(pipe.image_processor.apply_overlay(mask, source, direct))


def _request(
	init_image: bytes = b'', mask_image: bytes = b'', model: str = '', **extra: int | float
) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=6, seed=11, sampler=gen_pb.SAMPLER_EULER, model=model)
	request.init_image, request.mask_image = init_image, mask_image
	for field, value in extra.items():
		setattr(request, field, value)
	return request


async def test_inpainting_equals_diffusers_and_keeps_the_black_area(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	data, source = _source(64, 64)
	mask_data, mask = _mask(64, 64)
	events = await collect(gen.Generate(_request(init_image=data, mask_image=mask_data, strength=0.8, preview_every=2)))
	served = pixels(next(event.image.data for event in events if event.HasField('image')))
	binary = mask.point(lambda value: 255 if value >= 128 else 0)
	np.testing.assert_array_equal(served, _direct(tiny_sd_dir, source, binary, 0.8))
	kept = np.asarray(source)[:, :31]
	np.testing.assert_array_equal(served[:, :31], kept, 'black (and grey < 128) pixels come back unchanged')
	assert not np.array_equal(served[:, 32:], np.asarray(source)[:, 32:]), 'the white area is repainted'
	assert any(event.HasField('preview') for event in events)


async def test_bad_masks_are_refused(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	init = _source(64, 64)[0]
	cases = [
		(_request(mask_image=_mask(64, 64)[0]), 'init_image too'),
		(_request(init_image=init, mask_image=b'garbage'), 'not a readable'),
		(_request(init_image=init, mask_image=_mask(32, 64)[0]), 'mask_image is 32x64 but init_image is 64x64'),
	]
	for request, words in cases:
		_, error = await until_error(gen.Generate(request))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert 'mask_image' in error_details(error)[1]
		assert words in str(error.details())


async def test_inpainting_is_recorded_and_not_regenerated(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	events = await collect(gen.Generate(_request(init_image=_source(64, 64)[0], mask_image=_mask(64, 64)[0])))
	image = next(event.image.data for event in events if event.HasField('image'))
	history = history_grpc.HistoryServiceStub(channel)
	_, error = await until_error(history.Regenerate(history_pb.RegenerateRequest(id=events[-1].job_id)))
	with Image.open(io.BytesIO(image)) as opened:
		assert 'Denoising strength: 0.75, Inpaint: masked area' in opened.info['parameters']
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'was inpainting and its init image and mask are not stored' in str(error.details())


async def test_cli_inpainting(daemon: Daemon, tmp_path: Path) -> None:
	(tmp_path / 'photo.png').write_bytes(_source(64, 64)[0])
	(tmp_path / 'mask.png').write_bytes(_mask(64, 64)[0])
	out = tmp_path / 'fixed.png'
	argv = ['--address', f'127.0.0.1:{daemon.port}', 'generate', 'a fox', '-o', str(out), '--steps', '4']
	files = ['--init-image', str(tmp_path / 'photo.png'), '--mask', str(tmp_path / 'mask.png')]
	assert await asyncio.to_thread(ctl, [*argv, *files]) == 0
	with Image.open(out) as image:
		assert 'Inpaint: masked area' in image.info['parameters']
		assert np.array_equal(np.asarray(image.convert('RGB'))[:, :31], np.asarray(_source(64, 64)[1])[:, :31])


def _inpainting_model(folder: Path) -> Path:
	"""The tiny pipeline with a 9-channel UNet (latents + mask + masked-image latents), as inpainting models are."""
	pipe = build_pipeline(seed=3)
	torch.manual_seed(3)
	unet = UNet2DConditionModel.from_config({**pipe.unet.config, 'in_channels': 9})
	components = {**pipe.components, 'unet': unet}
	StableDiffusionInpaintPipeline(**components).save_pretrained(str(folder), safe_serialization=True)
	return folder


async def test_a_dedicated_inpainting_model_inpaints_and_refuses_the_rest(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	folder = _inpainting_model(tmp_path / 'models' / 'tiny-inpainting')
	daemon = await start_real()
	data, source = _source(64, 64)
	mask_data, mask = _mask(64, 64)
	chan, stub = stubs(daemon)
	async with chan:
		models = model_grpc.ModelServiceStub(chan)
		listed = {
			model.name: model.inpainting for model in (await models.ListModels(model_pb.ListModelsRequest())).models
		}
		loaded = await models.LoadModel(model_pb.LoadModelRequest(model='tiny-inpainting'))
		request = _request(init_image=data, mask_image=mask_data, model='tiny-inpainting', strength=1.0)
		events = await collect(stub.Generate(request))
		_, refused = await until_error(stub.Generate(_request(model='tiny-inpainting')))
	served = pixels(next(event.image.data for event in events if event.HasField('image')))
	binary = mask.point(lambda value: 255 if value >= 128 else 0)
	assert listed == {TINY_MODEL: False, 'tiny-inpainting': True}
	assert loaded.model.name == 'tiny-inpainting'
	np.testing.assert_array_equal(served, _direct(folder, source, binary, 1.0))
	assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'it only inpaints; send init_image and mask_image' in str(refused.details())


async def test_mask_blur_and_only_masked_match_diffusers(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	data, source = _source(64, 64)
	small = np.zeros((64, 64), dtype=np.uint8)
	small[20:36, 24:40] = 255  # a 16x16 square: "only masked" inpaints a crop around it at 64x64
	buffer = io.BytesIO()
	Image.fromarray(small, 'L').save(buffer, format='PNG')
	blurred = await collect(gen.Generate(_request(init_image=data, mask_image=buffer.getvalue(), mask_blur=4)))
	cropped = await collect(gen.Generate(_request(init_image=data, mask_image=buffer.getvalue(), mask_crop_padding=8)))
	soft = Image.fromarray(small, 'L').filter(ImageFilter.GaussianBlur(4))
	blurred_image = next(event.image.data for event in blurred if event.HasField('image'))
	np.testing.assert_array_equal(pixels(blurred_image), _direct(tiny_sd_dir, source, soft, 0.75))
	assert np.array_equal(pixels(blurred_image)[:8], np.asarray(source)[:8]), 'far from the mask: kept exactly'
	cropped_image = next(event.image.data for event in cropped if event.HasField('image'))
	mask = Image.fromarray(small, 'L')
	np.testing.assert_array_equal(pixels(cropped_image), _direct(tiny_sd_dir, source, mask, 0.75, crop=8))
	with Image.open(io.BytesIO(cropped_image)) as opened:
		assert 'Inpaint area: Only masked, Masked area padding: 8' in opened.info['parameters']
	with Image.open(io.BytesIO(blurred_image)) as opened:
		assert 'Mask blur: 4' in opened.info['parameters']


async def test_mask_options_need_a_mask(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	init = _source(64, 64)[0]
	for request, field in (
		(_request(init_image=init, mask_blur=4), 'mask_blur'),
		(_request(init_image=init, mask_image=_mask(64, 64)[0], mask_blur=65), 'mask_blur'),
		(_request(init_image=init, mask_crop_padding=8), 'mask_crop_padding'),
	):
		_, error = await until_error(gen.Generate(request))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert field in error_details(error)[1]
