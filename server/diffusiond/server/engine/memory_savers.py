"""A job's memory plan on the active pipeline (jobs/memory.py decides): the loaded model's own shape for the estimate,
and the savers it needs turned on for one call and off after it. Savers the device settings keep on always
(device.attention_slicing, vae_slicing, vae_tiling) count as on and are left as they are. Worker thread only."""

import contextlib
from collections.abc import Iterator

import torch
from diffusers import DiffusionPipeline

from diffusiond.server.jobs.memory import ATTENTION_SLICING, SAVERS, VAE_SLICING, VAE_TILING, Shape
from diffusiond.server.settings import DeviceSettings


def pipeline_shape(pipe: DiffusionPipeline, dtype: torch.dtype) -> Shape:
	"""The estimate's inputs from the pipeline's configs (diffusers' `attention_head_dim` counts heads in SD configs)."""
	unet = pipe.unet.config
	blocks = list(unet.down_block_types)
	first = next((index for index, name in enumerate(blocks) if 'CrossAttn' in name), 0)
	heads = unet.num_attention_heads or unet.attention_head_dim
	heads_there = heads[first] if isinstance(heads, list | tuple) else heads
	return Shape(
		heads=int(heads_there),
		level=2**first,
		unet_channels=int(unet.block_out_channels[0]),
		vae_channels=int(pipe.vae.config.block_out_channels[0]),
		tile=int(pipe.vae.config.sample_size),
		value_bytes=torch.finfo(dtype).bits // 8,
	)


def always_on(options: DeviceSettings) -> list[str]:
	"""The savers the device settings keep on for every job."""
	kept = (options.attention_slicing, options.vae_slicing, options.vae_tiling)
	return [saver for saver, on in zip(SAVERS, kept, strict=True) if on]


@contextlib.contextmanager
def memory_savers(pipe: DiffusionPipeline, savers: list[str]) -> Iterator[None]:
	"""`savers` on for the `with` block (those the settings keep on are not in it)."""
	if ATTENTION_SLICING in savers:
		pipe.enable_attention_slicing('max')
	if VAE_SLICING in savers:
		pipe.vae.enable_slicing()
	if VAE_TILING in savers:
		pipe.vae.enable_tiling()
	try:
		yield
	finally:
		if ATTENTION_SLICING in savers:
			pipe.disable_attention_slicing()
		if VAE_SLICING in savers:
			pipe.vae.disable_slicing()
		if VAE_TILING in savers:
			pipe.vae.disable_tiling()
