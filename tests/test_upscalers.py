"""Upscalers through the stubs: the upscalers folder as spandrel reads it (tiny random Real-ESRGAN files in the
layouts people download), UpscaleImage pixel-exact against spandrel's own call and Pillow's Lanczos, tiles with
their progress, a hires fix upscaled by a model exactly as the direct composition, the refusals."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import spandrel
import torch
from diffusers import AutoPipelineForImage2Image, StableDiffusionPipeline
from PIL import Image

from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import Pixels, collect, error_details, next_of, pixels, rpc_error, until_error
from tests.upscaler_files import write_upscalers

COMPACT = 'realesr-compact-x2'
RRDB = 'RealESRGAN_x4plus'


def _png(width: int, height: int, seed: int = 0) -> bytes:
	noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
	buffer = io.BytesIO()
	Image.fromarray(noise).save(buffer, format='PNG')
	return buffer.getvalue()


def _spandrel(path: Path, image: Image.Image) -> Image.Image:
	"""spandrel's own loader and call, with the usual [0, 1] tensor conversion."""
	descriptor = spandrel.ModelLoader().load_from_file(str(path))
	tensor = torch.from_numpy(np.asarray(image.convert('RGB')).copy()).permute(2, 0, 1)[None].float() / 255
	with torch.inference_mode():
		out = descriptor(tensor)
	return Image.fromarray((out[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def _image(events: list[gen_pb.GenerateEvent]) -> gen_pb.ImageEvent:
	return next(event.image for event in events if event.HasField('image'))


@pytest.fixture(scope='module')
async def folder(daemon: Daemon) -> Path:
	path = daemon.settings.storage.upscalers_dir
	await asyncio.to_thread(write_upscalers, path)
	await daemon.assets.upscalers.refresh()
	return path


async def test_the_folder_is_listed_with_architecture_and_scale(channel: grpc.aio.Channel, folder: Path) -> None:
	listed = await asset_grpc.AssetServiceStub(channel).ListUpscalers(asset_pb.ListUpscalersRequest())
	found = {item.name: item for item in listed.upscalers}
	assert (found[RRDB].architecture, found[RRDB].scale, found[RRDB].layout) == ('ESRGAN', 4, 'SR')
	assert (found[COMPACT].architecture, found[COMPACT].scale) == ('RealESRGAN Compact', 2)
	assert found[COMPACT].status == model_pb.MODEL_STATUS_READY
	old = found['4x-old-training']
	assert (old.status, old.pickle) == (model_pb.MODEL_STATUS_UNSAFE, True)
	assert found['not-an-upscaler'].status == model_pb.MODEL_STATUS_INVALID
	assert 'spandrel' in found['not-an-upscaler'].problem
	assert list(listed.builtin) == ['Lanczos', 'Nearest']


async def test_lanczos_is_pillow_s_resize_and_the_stream_has_each_stage(
	gen: gen_grpc.GenerationServiceAsyncStub,
) -> None:
	source = _png(40, 24)
	events = await collect(gen.UpscaleImage(gen_pb.UpscaleImageRequest(image=source)))
	expected = Image.open(io.BytesIO(source)).convert('RGB').resize((80, 48), resample=Image.Resampling.LANCZOS)
	assert np.array_equal(pixels(_image(events).data), np.asarray(expected))
	kinds = [event.WhichOneof('event') for event in events]
	assert kinds[0] == 'queued'
	assert kinds[-2:] == ['image', 'completed']
	started = next(event.started for event in events if event.HasField('started'))
	assert (started.model, started.width, started.height) == ('Lanczos', 80, 48)
	stages = [gen_pb.Stage.Name(event.stage.stage) for event in events if event.HasField('stage')]
	assert stages == ['STAGE_UPSCALING', 'STAGE_ENCODING_IMAGE']
	completed = events[-1].completed
	assert (completed.state, completed.storage) == (gen_pb.JOB_STATE_SUCCEEDED, gen_pb.STORAGE_STATE_NOT_STORED)


@pytest.mark.parametrize(('name', 'scale', 'size'), [(COMPACT, None, (96, 80)), (RRDB, 2.0, (96, 80))])
async def test_a_model_upscale_is_spandrel_s_own_call(
	gen: gen_grpc.GenerationServiceAsyncStub, folder: Path, name: str, scale: float | None, size: tuple[int, int]
) -> None:
	"""One tile: exactly spandrel's call; the x4 model asked for x2 runs once and is resized with Lanczos."""
	source = _png(48, 40, seed=3)
	request = gen_pb.UpscaleImageRequest(image=source, upscaler=name, scale=scale)
	events = await collect(gen.UpscaleImage(request))
	made = _spandrel(folder / f'{name}.safetensors', Image.open(io.BytesIO(source)))
	expected = made.resize(size, resample=Image.Resampling.LANCZOS) if made.size != size else made
	image = _image(events)
	assert (image.width, image.height) == size
	assert np.array_equal(pixels(image.data), np.asarray(expected))


async def test_tiles_report_progress_and_blend_without_seams(
	gen: gen_grpc.GenerationServiceAsyncStub, folder: Path
) -> None:
	source = _png(96, 80, seed=4)
	request = gen_pb.UpscaleImageRequest(image=source, upscaler=COMPACT, tile_size=48, tile_overlap=16)
	events = await collect(gen.UpscaleImage(request))
	progress = [event.progress for event in events if event.HasField('progress')]
	assert {step.total_steps for step in progress} == {6}, '3 tiles across 96 px, 2 down 80 px'
	assert progress[-1].step == 6
	assert progress[-1].stage == gen_pb.STAGE_UPSCALING
	assert [step.step for step in progress] == sorted({step.step for step in progress})
	whole = np.asarray(_spandrel(folder / f'{COMPACT}.safetensors', Image.open(io.BytesIO(source)))).astype(int)
	tiled = pixels(_image(events).data).astype(int)
	assert tiled.shape == whole.shape == (160, 192, 3)
	difference = np.abs(tiled - whole)
	assert difference.max() <= 1, 'the blend leaves out each tile border: no seam (1 level: float blending)'


def _direct_hires(model: Path, upscaler: Path) -> Pixels:
	pipe = StableDiffusionPipeline.from_pretrained(
		str(model), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	generator = [torch.Generator().manual_seed(9)]
	first = pipe('a bridge', width=64, height=64, num_inference_steps=2, generator=generator).images[0]
	upscaled = _spandrel(upscaler, first)
	second = AutoPipelineForImage2Image.from_pipe(pipe)
	image = second(
		'a bridge', image=[upscaled], strength=0.5, num_inference_steps=2, generator=[torch.Generator().manual_seed(9)]
	)
	return np.asarray(image.images[0])


async def test_a_hires_fix_upscaled_by_a_model_is_the_direct_composition(
	gen: gen_grpc.GenerationServiceAsyncStub, folder: Path, tiny_sd_dir: Path
) -> None:
	expected = await asyncio.to_thread(_direct_hires, tiny_sd_dir, folder / f'{COMPACT}.safetensors')
	fix = gen_pb.HiresFix(upscaler=COMPACT, scale=2, steps=2, denoising_strength=0.5)
	request = gen_pb.GenerateRequest(prompt='a bridge', steps=2, seed=9, width=64, height=64, hires=fix)
	events = await collect(gen.Generate(request))
	image = _image(events)
	assert (image.width, image.height) == (128, 128)
	assert np.array_equal(pixels(image.data), expected)
	parameters = str(Image.open(io.BytesIO(image.data)).info['parameters'])
	assert f'Hires upscaler: {COMPACT}' in parameters


@pytest.mark.parametrize(
	('request_fields', 'code', 'reason', 'words'),
	[
		({'upscaler': 'ESRGAN_4x'}, grpc.StatusCode.NOT_FOUND, 'UPSCALER_NOT_FOUND', "'ESRGAN_4x'"),
		({'upscaler': '4x-old-training'}, grpc.StatusCode.FAILED_PRECONDITION, 'ASSET_INCOMPATIBLE', 'pickle'),
		({'upscaler': 'not-an-upscaler'}, grpc.StatusCode.FAILED_PRECONDITION, 'ASSET_INCOMPATIBLE', 'spandrel'),
		({'scale': 9.0}, grpc.StatusCode.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'at most 8'),
		({'tile_size': 8}, grpc.StatusCode.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'tile_size must be 32..2048'),
		({'tile_size': 64, 'tile_overlap': 40}, grpc.StatusCode.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'tile_overlap'),
		({'quality': 0}, grpc.StatusCode.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'quality'),
		({'image': b'not an image'}, grpc.StatusCode.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'not a readable PNG'),
		({'image': b''}, grpc.StatusCode.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'image is required'),
	],
)
async def test_bad_upscale_requests_are_refused_before_queueing(
	gen: gen_grpc.GenerationServiceAsyncStub,
	folder: Path,
	request_fields: dict[str, object],
	code: grpc.StatusCode,
	reason: str,
	words: str,
) -> None:
	request = gen_pb.UpscaleImageRequest(image=_png(16, 16))
	for field, value in request_fields.items():
		setattr(request, field, value)
	error = await rpc_error(collect(gen.UpscaleImage(request)))
	assert error.code() == code
	assert words in (error.details() or '')
	assert error_details(error)[0].reason == reason


async def test_a_hires_fix_naming_no_upscaler_is_not_found(
	gen: gen_grpc.GenerationServiceAsyncStub, folder: Path
) -> None:
	fix = gen_pb.HiresFix(upscaler='ESRGAN_4x')
	request = gen_pb.GenerateRequest(prompt='p', steps=2, width=64, height=64, hires=fix)
	error = await rpc_error(collect(gen.Generate(request)))
	assert error.code() == grpc.StatusCode.NOT_FOUND
	assert error_details(error)[0].reason == 'UPSCALER_NOT_FOUND'


def _gray_png(side: int) -> bytes:
	buffer = io.BytesIO()
	Image.new('RGB', (side, side), 'gray').save(buffer, format='PNG')
	return buffer.getvalue()


async def test_a_result_over_the_pixel_cap_is_refused_naming_the_size(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides={'limits': {'max_image_pixels': 4096}})
	chan, gen = stubs(daemon)
	async with chan:
		request = gen_pb.UpscaleImageRequest(image=_gray_png(40), scale=2)
		error = await rpc_error(collect(gen.UpscaleImage(request)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert '80x80 (6400 pixels)' in (error.details() or '')
	assert error_details(error)[1] == ['scale']


async def test_a_running_upscale_is_listed_and_cancelled_between_tiles(start_fake: StartDaemon, tmp_path: Path) -> None:
	engine = FakeEngine()
	engine.upscale_hold.clear()
	daemon = await start_fake(engine)
	(daemon.settings.storage.upscalers_dir / 'x2.safetensors').write_bytes(b'{}')
	await daemon.assets.upscalers.refresh()
	chan, gen = stubs(daemon)
	async with chan:
		request = gen_pb.UpscaleImageRequest(image=_gray_png(64), upscaler='x2', tile_size=32, tile_overlap=16)
		call = gen.UpscaleImage(request)
		first = await next_of(call, 'progress')
		assert (first.progress.step, first.progress.total_steps) == (1, 9), '3 x 3 tiles of 32 px over 64 px'
		listed = await gen.ListJobs(gen_pb.ListJobsRequest())
		assert [(job.model, job.stage, job.width) for job in listed.jobs] == [('x2', gen_pb.STAGE_UPSCALING, 128)]
		cancelled = await gen.CancelJob(gen_pb.CancelJobRequest(job_id=first.job_id))
		engine.upscale_hold.set()
		events, error = await until_error(call)
	assert cancelled.previous_state == gen_pb.JOB_STATE_RUNNING
	assert error.code() == grpc.StatusCode.CANCELLED
	assert not [event for event in events if event.HasField('image')]


async def test_the_cli_upscales_a_file_and_lists_the_folder(
	daemon: Daemon, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
	source, out = tmp_path / 'small.png', tmp_path / 'big.webp'
	source.write_bytes(_png(32, 24))
	address = ['--address', f'127.0.0.1:{daemon.port}']
	argv = [*address, 'upscale', str(source), '-o', str(out), '--upscaler', COMPACT, '--scale', '3']
	assert await asyncio.to_thread(ctl, argv) == 0
	with Image.open(out) as made:
		assert (made.format, made.size) == ('WEBP', (96, 72)), 'x2 twice (the model), then Lanczos down to x3'
	assert await asyncio.to_thread(ctl, argv) == 2, 'an existing output is not overwritten'
	capsys.readouterr()
	assert await asyncio.to_thread(ctl, [*address, 'upscalers']) == 0
	listed = capsys.readouterr().out
	assert f'{RRDB}  ESRGAN  x4' in listed
	assert 'built in: Lanczos, Nearest' in listed
	assert (
		await asyncio.to_thread(ctl, [*address, 'upscale', str(source), '--upscaler', 'nope', '-o', str(out) + '.png'])
		== 3
	)
