"""Fast decode: a job's final latents decoded by the tiny autoencoder in previewers/ (TAESD) instead of the model's VAE,
as the direct composition (the pipeline's latents, then the tiny decoder) gives them; the VAE untouched for the next
job; said in the infotext; FAILED_PRECONDITION naming the folder when it is not there."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import grpc
import numpy as np
import torch
from diffusers import AutoencoderTiny, EulerDiscreteScheduler, StableDiffusionPipeline
from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.asset_files import write_tiny_taesd
from tests.conftest import TINY_MODEL, StartReal, stubs
from tests.helpers import Pixels, collect, error_details, kinds, pixels, until_error

PROMPT = 'a fox'


def _request(fast: bool) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=4, seed=9, width=64, height=64, sampler=gen_pb.SAMPLER_EULER)
	request.fast_decode = fast
	return request


def _direct(model: Path, taesd: Path) -> Pixels:
	pipe = StableDiffusionPipeline.from_pretrained(
		str(model), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
	latents = pipe(
		prompt=PROMPT,
		num_inference_steps=4,
		width=64,
		height=64,
		output_type='latent',
		generator=torch.Generator('cpu').manual_seed(9),
	).images
	decoder = AutoencoderTiny.from_pretrained(str(taesd), local_files_only=True)
	with torch.inference_mode():
		decoded = decoder.decode(latents).sample[0]
	return np.asarray(pipe.image_processor.postprocess(decoded[None], output_type='pil')[0])


async def test_fast_decode_uses_the_tiny_autoencoder_and_leaves_the_vae(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	write_tiny_taesd(tmp_path / 'previewers' / 'taesd')
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	daemon = await start_real()
	chan, stub = stubs(daemon)
	async with chan:
		plain = await collect(stub.Generate(_request(False)))
		fast = await collect(stub.Generate(_request(True)))
		again = await collect(stub.Generate(_request(False)))
	image = next(event.image.data for event in fast if event.HasField('image'))
	made = pixels(image)
	direct = _direct(tiny_sd_dir, tmp_path / 'previewers' / 'taesd')
	difference = np.abs(made.astype(int) - direct.astype(int))
	baseline = pixels(next(event.image.data for event in plain if event.HasField('image')))
	assert difference.max() <= 1, 'the direct composition (latents x scaling / scaling: float rounding at most)'
	assert not np.array_equal(made, baseline), 'another decoder, another image'
	np.testing.assert_array_equal(
		pixels(next(event.image.data for event in again if event.HasField('image'))), baseline
	)
	assert 'Decoder: TAESD' in str(Image.open(io.BytesIO(image)).info['parameters'])
	assert 'stage' in kinds(fast)


async def test_fast_decode_without_the_tiny_autoencoder_is_refused(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	daemon = await start_real()
	chan, stub = stubs(daemon)
	async with chan:
		_, error = await until_error(stub.Generate(_request(True)))
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'previewers/taesd' in str(error.details())
	assert error_details(error)[0].metadata['folder'] == 'previewers/taesd'
