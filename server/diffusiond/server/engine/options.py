"""The GPU/memory options of the device settings, applied to a freshly loaded pipeline."""

import logging

import torch
from diffusers import DiffusionPipeline

from diffusiond.server.settings import DeviceSettings

log = logging.getLogger(__name__)


def apply_options(pipe: DiffusionPipeline, options: DeviceSettings, device: torch.device) -> bool:
	"""Applies the memory and speed options; returns True when the pipeline manages its own placement
	(model CPU offload), so the caller must not move it to the device."""
	if options.attention_slicing:
		pipe.enable_attention_slicing()
	if options.vae_slicing:
		pipe.vae.enable_slicing()
	if options.vae_tiling:
		pipe.vae.enable_tiling()
	if options.channels_last:
		pipe.unet.to(memory_format=torch.channels_last)
	if options.compile:
		pipe.unet = torch.compile(pipe.unet, mode='reduce-overhead', fullgraph=False)
	if options.cpu_offload:
		if device.type != 'cuda':
			log.warning('cpu_offload applies to CUDA only; ignored on %s', device.type)
			return False
		pipe.enable_model_cpu_offload(device=device)
		return True
	return False
