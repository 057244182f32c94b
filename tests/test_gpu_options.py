"""Device options applied at load (checked on CPU: flags set, pixels unchanged) and the PNG level setting."""

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.jobs.validation import resolve
from diffusiond.server.schemas import GenerateParams
from diffusiond.server.settings import DeviceSettings, LimitsSettings
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.conftest import StartDaemon, stubs
from tests.helpers import collect, pixels


def _generate(tiny_sd_dir: Path, options: DeviceSettings) -> tuple[DiffusersEngine, npt.NDArray[np.int16]]:
	backend = DiffusersEngine(torch.device('cpu'), torch.float32, PipelineCache(1, 2**40), options=options)
	model = ModelInfo(id='tiny', name='tiny', path=tiny_sd_dir, native_size=64)
	backend.load(model)
	spec = resolve(GenerateParams(prompt='a fox', steps=3, seed=4, num_images=2), model, LimitsSettings())
	backend.prepare(spec)
	images = backend.run([spec], lambda step, total: False, [None], lambda stage, steps: None).images
	return backend, np.stack([np.asarray(image, dtype=np.int16) for image in images])


def test_memory_options_are_applied_and_leave_the_pixels(tiny_sd_dir: Path) -> None:
	_, plain = _generate(tiny_sd_dir, DeviceSettings())
	backend, tuned = _generate(
		tiny_sd_dir, DeviceSettings(attention_slicing=True, vae_slicing=True, channels_last=True)
	)
	pipe = backend.active_pipeline()
	assert pipe is not None
	assert pipe.vae.use_slicing
	assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
	assert np.abs(tuned - plain).max() <= 2, 'slicing and memory format change rounding at most'
	tiled, images = _generate(tiny_sd_dir, DeviceSettings(vae_tiling=True))
	tiled_pipe = tiled.active_pipeline()
	assert tiled_pipe is not None
	assert tiled_pipe.vae.use_tiling  # blends tiles: pixels may differ, by design
	assert images.shape == plain.shape


def test_cpu_offload_is_ignored_off_cuda(tiny_sd_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
	with caplog.at_level(logging.WARNING):
		_, images = _generate(tiny_sd_dir, DeviceSettings(cpu_offload=True))
	assert images.shape == (2, 64, 64, 3)
	assert 'cpu_offload applies to CUDA only' in caplog.text


@pytest.mark.parametrize('level', [0, 9])
async def test_png_compress_level_setting(start_fake: StartDaemon, level: int) -> None:
	daemon = await start_fake(overrides={'device': {'png_compress_level': level}})
	chan, stub = stubs(daemon)
	async with chan:
		events = await collect(stub.Generate(gen_pb.GenerateRequest(prompt='x', steps=1, width=256, height=256)))
	data = next(event.image.data for event in events if event.HasField('image'))
	assert pixels(data).shape == (256, 256, 3)
	assert (len(data) > 150_000) if level == 0 else (len(data) < 5_000)  # raw 256x256 RGB is 196 kB
