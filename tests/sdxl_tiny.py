"""A tiny random SDXL pipeline (two text encoders, the second with a projection and its own pad token), as
diffusers' own fast tests build one, with the demo model's offline character tokenizer."""

import tempfile
from pathlib import Path

import torch
from diffusers import (
	AutoencoderKL,
	EulerDiscreteScheduler,
	StableDiffusionXLImg2ImgPipeline,
	StableDiffusionXLPipeline,
	UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from diffusiond.server.engine.demo import offline_tokenizer


def _unet(projection: int, context: int) -> UNet2DConditionModel:
	return UNet2DConditionModel(
		block_out_channels=(32, 64),
		layers_per_block=2,
		sample_size=32,
		in_channels=4,
		out_channels=4,
		down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
		up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
		attention_head_dim=(2, 4),
		use_linear_projection=True,
		addition_embed_type='text_time',
		addition_time_embed_dim=8,
		transformer_layers_per_block=(1, 2),
		projection_class_embeddings_input_dim=projection,
		cross_attention_dim=context,
		norm_num_groups=1,
	)


def build_sdxl() -> StableDiffusionXLPipeline:
	torch.manual_seed(0)
	unet = _unet(projection=80, context=64)  # 6 time ids x 8 + the second encoder's projection (32); 32 + 32
	vae = AutoencoderKL(
		block_out_channels=[32, 64],
		down_block_types=['DownEncoderBlock2D'] * 2,
		up_block_types=['UpDecoderBlock2D'] * 2,
		latent_channels=4,
	)
	with tempfile.TemporaryDirectory() as scratch:
		tokenizer = offline_tokenizer(Path(scratch))
		folder = Path(scratch)
		tokenizer_2 = CLIPTokenizer(
			str(folder / 'vocab.json'), str(folder / 'merges.txt'), pad_token='0', model_max_length=77
		)
	config = {
		'bos_token_id': 0,
		'eos_token_id': 1,
		'pad_token_id': 1,
		'hidden_size': 32,
		'intermediate_size': 37,
		'num_attention_heads': 4,
		'num_hidden_layers': 3,
		'vocab_size': len(tokenizer),
		'projection_dim': 32,
	}
	pipe = StableDiffusionXLPipeline(
		unet=unet,
		vae=vae,
		text_encoder=CLIPTextModel(CLIPTextConfig(**config)),
		text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**config)),
		tokenizer=tokenizer,
		tokenizer_2=tokenizer_2,
		scheduler=EulerDiscreteScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012),
	)
	pipe.set_progress_bar_config(disable=True)
	return pipe


def build_refiner() -> StableDiffusionXLImg2ImgPipeline:
	"""A tiny SDXL refiner: only the second text encoder, aesthetic-score conditioning (5 time ids x 8 + 32)."""
	base = build_sdxl()
	torch.manual_seed(1)
	unet = _unet(projection=72, context=32)
	refiner = StableDiffusionXLImg2ImgPipeline(
		unet=unet,
		vae=base.vae,
		text_encoder=None,
		text_encoder_2=base.text_encoder_2,
		tokenizer=None,
		tokenizer_2=base.tokenizer_2,
		scheduler=base.scheduler,
		requires_aesthetics_score=True,
		force_zeros_for_empty_prompt=False,
	)
	refiner.set_progress_bar_config(disable=True)
	return refiner
