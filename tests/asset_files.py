"""Embedding, VAE and tiny-autoencoder files in the layouts people download, made from the tiny model or random numbers."""

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny
from safetensors.torch import load_file, save_file

from tests.ldm import vae_to_ldm

WIDTH = 32  # the tiny model's text-encoder width


def random_vectors(count: int, seed: int, width: int = WIDTH) -> torch.Tensor:
	return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


def write_embedding(target: Path, vectors: torch.Tensor, layout: str = 'emb_params') -> Path:
	"""`emb_params` (A1111's .safetensors), `pt` (A1111's .pt: string_to_param), or a diffusers concept."""
	target.parent.mkdir(parents=True, exist_ok=True)
	if layout == 'pt':
		torch.save({'string_to_token': {'*': 265}, 'string_to_param': {'*': vectors}, 'name': target.stem}, target)
	elif layout == 'concept':
		save_file({f'<{target.stem}>': vectors.contiguous()}, target)
	else:
		save_file({'emb_params': vectors.contiguous()}, target)
	return target


def write_sdxl_embedding(target: Path, count: int) -> Path:
	save_file({'clip_l': random_vectors(count, 1, 768), 'clip_g': random_vectors(count, 2, 1280)}, target)
	return target


def write_vae(model_dir: Path, target: Path, scale: float = 1.0, ldm: bool = True) -> Path:
	"""The tiny model's VAE (its decoder scaled by `scale`) as an A1111 models/VAE file (bare LDM keys) or a
	diffusers component folder."""
	folder = model_dir / 'vae'
	weights = load_file(folder / 'diffusion_pytorch_model.safetensors')
	weights = {key: value * scale if key.startswith('decoder.conv_out') else value for key, value in weights.items()}
	target.parent.mkdir(parents=True, exist_ok=True)
	if not ldm:
		vae = AutoencoderKL.from_pretrained(str(folder))
		vae.load_state_dict(weights)
		vae.save_pretrained(str(target))
		return target / 'diffusion_pytorch_model.safetensors'
	config = json.loads((folder / 'config.json').read_text())
	converted = {
		key.removeprefix('first_stage_model.'): v.contiguous() for key, v in vae_to_ldm(config, weights).items()
	}
	save_file(converted, target)
	return target


def write_tiny_taesd(folder: Path) -> None:
	"""A TAESD-shaped autoencoder with random weights and narrow blocks (upsamples latents 8x, like the real one)."""
	torch.manual_seed(0)
	small = (8, 8, 8, 8)
	AutoencoderTiny(
		encoder_block_out_channels=small,
		decoder_block_out_channels=small,
		num_encoder_blocks=(1, 1, 1, 1),
		num_decoder_blocks=(1, 1, 1, 1),
	).save_pretrained(str(folder), safe_serialization=True)
