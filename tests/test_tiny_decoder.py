"""TAESD previews: a tiny autoencoder in <data_dir>/previewers/taesd decodes the previews; latent2rgb otherwise."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.asset_files import write_tiny_taesd
from tests.conftest import TINY_MODEL, StartReal, stubs
from tests.helpers import collect, pixels

REQUEST = gen_pb.GenerateRequest(prompt='a fox', steps=4, seed=21, sampler=gen_pb.SAMPLER_EULER, preview_every=2)


async def _previews(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal, decoder: str = 'taesd'
) -> list[gen_pb.GenerateEvent]:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	daemon = await start_real({'device': {'preview_decoder': decoder}})
	chan, stub = stubs(daemon)
	async with chan:
		return await collect(stub.Generate(REQUEST))


async def test_a_local_taesd_decodes_the_previews(tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal) -> None:
	write_tiny_taesd(tmp_path / 'previewers' / 'taesd')
	events = await _previews(tmp_path, tiny_sd_dir, start_real)
	previews = [event.preview for event in events if event.HasField('preview')]
	assert [preview.step for preview in previews] == [2, 4]
	assert (previews[0].width, previews[0].height) == (256, 256), '32x32 latents decoded 8x, not latent2rgb (64x64)'
	with Image.open(io.BytesIO(previews[-1].data)) as opened:
		assert (opened.format, opened.size) == ('JPEG', (256, 256))
	image = next(event.image for event in events if event.HasField('image'))
	assert pixels(image.data).shape == (64, 64, 3)


async def test_a_broken_taesd_falls_back_to_latent2rgb(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal, caplog: pytest.LogCaptureFixture
) -> None:
	folder = tmp_path / 'previewers' / 'taesd'
	folder.mkdir(parents=True)
	(folder / 'config.json').write_text('{"_class_name": "AutoencoderTiny"}')  # no weights
	with caplog.at_level(logging.WARNING):
		events = await _previews(tmp_path, tiny_sd_dir, start_real)
	previews = [event.preview for event in events if event.HasField('preview')]
	assert (previews[0].width, previews[0].height) == (64, 64)
	assert 'use latent2rgb' in caplog.text
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


async def test_auto_keeps_latent2rgb_on_cpu(tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal) -> None:
	write_tiny_taesd(tmp_path / 'previewers' / 'taesd')
	events = await _previews(tmp_path, tiny_sd_dir, start_real, 'auto')
	preview = next(event.preview for event in events if event.HasField('preview'))
	assert (preview.width, preview.height) == (64, 64), 'a TAESD decode costs far more than a step on CPU'
