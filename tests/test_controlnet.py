"""ControlNet through the stubs on the real tiny pipeline: exactly diffusers' ControlNet pipelines (text to image
and img2img) with a tiny random ControlNet made in the test run, the infotext, listing, refusals."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import torch
from diffusers import (
	ControlNetModel,
	StableDiffusionControlNetImg2ImgPipeline,
	StableDiffusionControlNetPipeline,
	UNet2DConditionModel,
)
from PIL import Image
from safetensors.torch import save_file

from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.checkpoints import write_header
from tests.helpers import Pixels, collect, error_details, pixels, rpc_error
from tests.ldm import controlnet_to_ldm

PROMPT = 'a lighthouse on a cliff'


def _png(seed: int) -> bytes:
	noise = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
	buffer = io.BytesIO()
	Image.fromarray(noise).save(buffer, format='PNG')
	return buffer.getvalue()


@pytest.fixture(scope='module')
async def controlnet(daemon: Daemon, tiny_sd_dir: Path) -> Path:
	"""A tiny ControlNet from the tiny UNet, its zero convolutions made random (so it changes the image)."""
	unet = UNet2DConditionModel.from_pretrained(str(tiny_sd_dir / 'unet'))
	torch.manual_seed(5)
	model = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
	with torch.no_grad():
		for name, parameter in model.named_parameters():
			if name.startswith(
				('controlnet_down_blocks', 'controlnet_mid_block', 'controlnet_cond_embedding.conv_out')
			):
				parameter.normal_(0, 0.3)
	folder = daemon.settings.storage.controlnets_dir / 'tinycn'
	model.save_pretrained(str(folder))
	original = controlnet_to_ldm(dict(model.config), model.state_dict())  # the same, as A1111's files are laid out
	save_file({key: value.contiguous() for key, value in original.items()}, folder.parent / 'tinycn-a1111.safetensors')
	wide = daemon.settings.storage.controlnets_dir / 'widesd2'
	write_header(
		wide / 'diffusion_pytorch_model.safetensors', {'controlnet_cond_embedding.conv_in.weight': [16, 3, 3, 3]}
	)
	(wide / 'config.json').write_text(json.dumps({'cross_attention_dim': 1024}))
	await daemon.assets.controlnets.refresh()
	await daemon.hasher.hash_pending()
	return folder


def _unit(model: str = 'tinycn', **fields: object) -> gen_pb.ControlNetUnit:
	unit = gen_pb.ControlNetUnit(model=model, image=_png(1), scale=0.8)
	for key, value in fields.items():
		setattr(unit, key, value)
	return unit


def _image(events: list[gen_pb.GenerateEvent]) -> Pixels:
	return pixels(next(event for event in events if event.HasField('image')).image.data)


def _direct(model_dir: Path, folder: Path, init: bytes | None, control: Image.Image | None = None) -> Pixels:
	controlnet = ControlNetModel.from_pretrained(str(folder))
	cls = StableDiffusionControlNetImg2ImgPipeline if init else StableDiffusionControlNetPipeline
	pipe = cls.from_pretrained(
		str(model_dir), controlnet=controlnet, safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	control = control or Image.open(io.BytesIO(_png(1))).convert('RGB')
	common = {
		'num_inference_steps': 3,
		'generator': [torch.Generator().manual_seed(9)],
		'controlnet_conditioning_scale': 0.8,
		'control_guidance_start': 0.0,
		'control_guidance_end': 1.0,
	}
	if init:
		source = Image.open(io.BytesIO(init)).convert('RGB')
		result = pipe(PROMPT, image=source, control_image=control, strength=0.7, **common)
	else:
		result = pipe(PROMPT, image=control, width=64, height=64, **common)
	return np.asarray(result.images[0])


@pytest.mark.parametrize('from_image', [False, True])
async def test_a_controlnet_job_is_exactly_diffusers_controlnet_pipeline(
	gen: gen_grpc.GenerationServiceAsyncStub, controlnet: Path, tiny_sd_dir: Path, from_image: bool
) -> None:
	init = _png(2) if from_image else None
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=9, width=64, height=64, controlnets=[_unit()])
	if init:
		request.init_image, request.strength = init, 0.7
	expected = await asyncio.to_thread(_direct, tiny_sd_dir, controlnet, init)
	served = _image(await collect(gen.Generate(request)))
	plain = gen_pb.GenerateRequest()
	plain.CopyFrom(request)
	del plain.controlnets[:]
	assert not np.array_equal(served, _image(await collect(gen.Generate(plain)))), 'the ControlNet steers the image'
	assert np.array_equal(served, expected)


async def test_a_controlnet_in_the_original_layout_equals_its_diffusers_folder(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel, controlnet: Path
) -> None:
	def request(name: str) -> gen_pb.GenerateRequest:
		return gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=9, width=64, height=64, controlnets=[_unit(name)])

	listed = (await asset_grpc.AssetServiceStub(channel).ListControlNets(asset_pb.ListControlNetsRequest())).controlnets
	original = next(item for item in listed if item.name == 'tinycn-a1111')
	assert (original.status, original.layout, original.width) == (model_pb.MODEL_STATUS_READY, 'ldm', 32)
	diffusers = _image(await collect(gen.Generate(request('tinycn'))))
	assert np.array_equal(_image(await collect(gen.Generate(request('tinycn-a1111')))), diffusers)


async def test_the_canny_preprocessor_finds_edges_as_opencv_does(
	gen: gen_grpc.GenerationServiceAsyncStub, controlnet: Path, tiny_sd_dir: Path
) -> None:
	photo = np.asarray(Image.open(io.BytesIO(_png(3))).convert('RGB'))
	edges = cv2.Canny(photo, 50, 150)
	assert edges.any(), 'the test image has edges'
	control = Image.fromarray(np.stack([edges] * 3, axis=-1))
	expected = await asyncio.to_thread(_direct, tiny_sd_dir, controlnet, None, control)
	unit = _unit(image=_png(3), preprocessor='canny', low_threshold=50, high_threshold=150)
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=9, width=64, height=64, controlnets=[unit])
	events = await collect(gen.Generate(request))
	assert np.array_equal(_image(events), expected)
	data = next(event for event in events if event.HasField('image')).image.data
	assert 'Module: canny, Model: tinycn' in str(Image.open(io.BytesIO(data)).info['parameters'])
	assert 'Threshold A: 50, Threshold B: 150' in str(Image.open(io.BytesIO(data)).info['parameters'])


async def test_controlnets_are_listed_and_named_in_the_infotext(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel, controlnet: Path
) -> None:
	listed = (await asset_grpc.AssetServiceStub(channel).ListControlNets(asset_pb.ListControlNetsRequest())).controlnets
	found = {item.name: item for item in listed}
	assert (found['tinycn'].status, found['tinycn'].width, found['tinycn'].layout) == (
		model_pb.MODEL_STATUS_READY,
		32,
		'diffusers',
	)
	assert found['widesd2'].base == model_pb.MODEL_BASE_SD2
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=2, seed=9, width=64, height=64, controlnets=[_unit()])
	events = await collect(gen.Generate(request))
	data = next(event for event in events if event.HasField('image')).image.data
	parameters = str(Image.open(io.BytesIO(data)).info['parameters'])
	unit = (
		f'Module: none, Model: tinycn [{found["tinycn"].short_hash}], Weight: 0.8, Guidance Start: 0, Guidance End: 1'
	)
	assert f'ControlNet 0: "{unit}"' in parameters


@pytest.mark.parametrize(
	('unit', 'hires', 'code', 'words'),
	[
		(_unit('nosuchcn'), False, grpc.StatusCode.NOT_FOUND, 'no ControlNet has'),
		(_unit('widesd2'), False, grpc.StatusCode.FAILED_PRECONDITION, 'was made for SD2'),
		(_unit(preprocessor='depth'), False, grpc.StatusCode.INVALID_ARGUMENT, "unknown preprocessor 'depth'"),
		(
			_unit(preprocessor='canny', low_threshold=200, high_threshold=100),
			False,
			grpc.StatusCode.INVALID_ARGUMENT,
			'low <= high',
		),
		(_unit(scale=3.0), False, grpc.StatusCode.INVALID_ARGUMENT, 'scale must be between 0 and 2'),
		(_unit(guidance_start=0.9, guidance_end=0.5), False, grpc.StatusCode.INVALID_ARGUMENT, 'start < end'),
		(_unit(image=b'not an image'), False, grpc.StatusCode.INVALID_ARGUMENT, 'controlnets[0].image'),
		(_unit(), True, grpc.StatusCode.INVALID_ARGUMENT, 'with a hires fix'),
	],
)
async def test_bad_controlnet_units_are_refused_before_queueing(
	gen: gen_grpc.GenerationServiceAsyncStub,
	controlnet: Path,
	unit: gen_pb.ControlNetUnit,
	hires: bool,
	code: grpc.StatusCode,
	words: str,
) -> None:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=2, width=64, height=64, controlnets=[unit])
	if hires:
		request.hires.CopyFrom(gen_pb.HiresFix(scale=1.5))
	error = await rpc_error(collect(gen.Generate(request)))
	assert error.code() == code
	assert words in (error.details() or '')
	if code == grpc.StatusCode.NOT_FOUND:
		assert error_details(error)[0].reason == 'CONTROLNET_NOT_FOUND'


async def test_the_cli_generates_with_a_controlnet_and_lists_them(
	daemon: Daemon, controlnet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
	control = tmp_path / 'edges.png'
	control.write_bytes(_png(1))
	out = tmp_path / 'out.png'
	base = ['--address', f'127.0.0.1:{daemon.port}']
	argv = [*base, 'generate', PROMPT, '--size', '64x64', '--steps', '2', '--controlnet', f'tinycn:{control}:0.8']
	assert await asyncio.to_thread(ctl, [*argv, '-o', str(out)]) == 0
	with Image.open(out) as made:
		assert 'ControlNet 0: "Module: none, Model: tinycn' in str(made.info['parameters'])
	capsys.readouterr()
	assert await asyncio.to_thread(ctl, [*base, 'controlnets', '--base', 'sd2']) == 0
	assert capsys.readouterr().out.startswith('widesd2  sd2  width 1024')
	assert await asyncio.to_thread(ctl, [*base, 'generate', 'x', '--controlnet', 'tinycn']) == 2
