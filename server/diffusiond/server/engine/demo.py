"""Builds the demo model: a tiny Stable Diffusion with random weights and an offline CLIP tokenizer.

It produces noise. It exists so the daemon runs its whole path (load, schedulers, denoise, decode,
encode, stream) with no download, and so tests run the real code on CPU in seconds. The layout is the
one diffusers' own tests use; the folder is a normal diffusers folder loaded like any other model.
"""

import json
import shutil
import string
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from diffusiond.server.catalog.probe import DEMO_MARKER

_NOTICE = 'diffusiond demo model: tiny, random weights, produces noise; exists to exercise the API offline.\n'


def offline_tokenizer(folder: Path) -> CLIPTokenizer:
	"""A CLIP tokenizer from a generated vocab: characters only, no merges (so no download)."""
	vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1}
	for char in string.ascii_lowercase + string.digits:
		vocab[char] = len(vocab)
		vocab[f'{char}</w>'] = len(vocab)
	(folder / 'vocab.json').write_text(json.dumps(vocab))
	(folder / 'merges.txt').write_text('#version: 0.2\n')
	return CLIPTokenizer(str(folder / 'vocab.json'), str(folder / 'merges.txt'), model_max_length=77)


def build_pipeline(seed: int = 0, channels: tuple[int, int] = (32, 64)) -> StableDiffusionPipeline:
	"""The tiny pipeline in memory, with weights drawn from `seed` (wider `channels` make a bigger model)."""
	torch.manual_seed(seed)
	unet = UNet2DConditionModel(
		block_out_channels=channels,
		layers_per_block=2,
		sample_size=32,
		in_channels=4,
		out_channels=4,
		down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
		up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
		cross_attention_dim=32,
	)
	vae = AutoencoderKL(
		block_out_channels=[32, 64],
		in_channels=3,
		out_channels=3,
		down_block_types=['DownEncoderBlock2D'] * 2,
		up_block_types=['UpDecoderBlock2D'] * 2,
		latent_channels=4,
	)
	with tempfile.TemporaryDirectory() as scratch:
		tokenizer = offline_tokenizer(Path(scratch))
	text_config = CLIPTextConfig(
		bos_token_id=0,
		eos_token_id=1,
		pad_token_id=1,
		hidden_size=32,
		intermediate_size=37,
		layer_norm_eps=1e-5,
		num_attention_heads=4,
		num_hidden_layers=3,
		vocab_size=len(tokenizer),
		max_position_embeddings=77,
	)
	scheduler = PNDMScheduler(
		beta_start=0.00085,
		beta_end=0.012,
		beta_schedule='scaled_linear',
		skip_prk_steps=True,
		set_alpha_to_one=False,
		steps_offset=1,
	)
	return StableDiffusionPipeline(
		unet=unet,
		vae=vae,
		text_encoder=CLIPTextModel(text_config),
		tokenizer=tokenizer,
		scheduler=scheduler,
		safety_checker=None,
		feature_extractor=None,
		requires_safety_checker=False,
	)


def build_demo_model(target: Path, seed: int = 0, channels: tuple[int, int] = (32, 64)) -> Path:
	"""Saves the tiny pipeline as a diffusers folder at `target` (atomically: temp folder + rename)."""
	if (target / 'model_index.json').is_file():
		return target
	target.parent.mkdir(parents=True, exist_ok=True)
	scratch = Path(tempfile.mkdtemp(prefix=f'.{target.name}-', dir=target.parent))
	try:
		build_pipeline(seed, channels).save_pretrained(str(scratch), safe_serialization=True)
		(scratch / DEMO_MARKER).write_text(_NOTICE)
		scratch.rename(target)
	finally:
		shutil.rmtree(scratch, ignore_errors=True)
	return target
