"""The component configs of every Stable Diffusion family, shipped with the daemon, so that a single-file
checkpoint loads with no network and no diffusers folder beside it.

Written from the published model configs (stable-diffusion-v1-5, stable-diffusion-inpainting,
stable-diffusion-2-1, stable-diffusion-2-inpainting, stable-diffusion-xl-base-1.0,
stable-diffusion-xl-1.0-inpainting-0.1, stable-diffusion-xl-refiner-1.0): what differs between families is
stated once below. family_layout.py says what a family is and lays it out as a folder.
"""

from diffusiond.server.catalog.family_layout import Family, Json, TextEncoder
from diffusiond.server.catalog.tokenizer_files import END

BETAS: Json = {'beta_start': 0.00085, 'beta_end': 0.012, 'beta_schedule': 'scaled_linear', 'num_train_timesteps': 1000}
SD_SCHEDULER: Json = {'set_alpha_to_one': False, 'skip_prk_steps': True, 'steps_offset': 1, 'clip_sample': False}
VAE: Json = {
	'_class_name': 'AutoencoderKL',
	'act_fn': 'silu',
	'block_out_channels': [128, 256, 512, 512],
	'down_block_types': ['DownEncoderBlock2D'] * 4,
	'up_block_types': ['UpDecoderBlock2D'] * 4,
	'in_channels': 3,
	'out_channels': 3,
	'latent_channels': 4,
	'layers_per_block': 2,
	'norm_num_groups': 32,
}
UNET: Json = {
	'_class_name': 'UNet2DConditionModel',
	'act_fn': 'silu',
	'center_input_sample': False,
	'downsample_padding': 1,
	'flip_sin_to_cos': True,
	'freq_shift': 0,
	'layers_per_block': 2,
	'mid_block_scale_factor': 1,
	'norm_eps': 1e-05,
	'norm_num_groups': 32,
	'out_channels': 4,
}
SD_BLOCKS: Json = {
	'block_out_channels': [320, 640, 1280, 1280],
	'down_block_types': ['CrossAttnDownBlock2D'] * 3 + ['DownBlock2D'],
	'up_block_types': ['UpBlock2D'] + ['CrossAttnUpBlock2D'] * 3,
}
SDXL_UNET: Json = {
	'addition_embed_type': 'text_time',
	'addition_time_embed_dim': 256,
	'use_linear_projection': True,
	'sample_size': 128,
}


CLIP_L = TextEncoder(
	folder='text_encoder',
	cls='CLIPTextModel',
	width=768,
	layers=12,
	heads=12,
	projection=768,
	act='quick_gelu',
	pad_token=END,
)
OPENCLIP_H = TextEncoder(
	folder='text_encoder',
	cls='CLIPTextModel',
	width=1024,
	layers=23,
	heads=16,
	projection=512,
	act='gelu',
	pad_token='!',
)
OPENCLIP_G = TextEncoder(
	folder='text_encoder_2',
	cls='CLIPTextModelWithProjection',
	width=1280,
	layers=32,
	heads=20,
	projection=1280,
	act='gelu',
	pad_token='!',
)


def _sd(pipeline: str, unet: Json, sample: int, encoder: TextEncoder, scheduler: str, config: Json) -> Family:
	return Family(
		pipeline=pipeline,
		unet={**UNET, **SD_BLOCKS, **unet},
		vae={**VAE, 'sample_size': sample},
		encoders=[encoder],
		scheduler=scheduler,
		scheduler_config={**BETAS, **SD_SCHEDULER, **config},
		extra={'safety_checker': [None, None], 'feature_extractor': [None, None], 'requires_safety_checker': False},
	)


SD2_UNET: Json = {'attention_head_dim': [5, 10, 20, 20], 'cross_attention_dim': 1024, 'use_linear_projection': True}
SDXL_SCHEDULER: Json = {
	**BETAS,
	**SD_SCHEDULER,
	'interpolation_type': 'linear',
	'prediction_type': 'epsilon',
	'timestep_spacing': 'leading',
	'use_karras_sigmas': False,
}
SDXL_BASE_UNET: Json = {
	**UNET,
	**SDXL_UNET,
	'attention_head_dim': [5, 10, 20],
	'block_out_channels': [320, 640, 1280],
	'cross_attention_dim': 2048,
	'down_block_types': ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
	'up_block_types': ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'],
	'projection_class_embeddings_input_dim': 2816,
	'transformer_layers_per_block': [1, 2, 10],
}
SDXL_VAE: Json = {**VAE, 'sample_size': 1024, 'scaling_factor': 0.13025, 'force_upcast': True}


def _sdxl(pipeline: str, unet: Json, encoders: list[TextEncoder], extra: Json) -> Family:
	return Family(
		pipeline=pipeline,
		unet=unet,
		vae=SDXL_VAE,
		encoders=encoders,
		scheduler='EulerDiscreteScheduler',
		scheduler_config=SDXL_SCHEDULER,
		extra=extra,
	)


SD1 = {'attention_head_dim': 8, 'cross_attention_dim': 768, 'sample_size': 64}
FAMILIES: dict[str, Family] = {
	'sd1': _sd('StableDiffusionPipeline', {**SD1, 'in_channels': 4}, 512, CLIP_L, 'PNDMScheduler', {}),
	'sd1-inpainting': _sd(
		'StableDiffusionInpaintPipeline', {**SD1, 'in_channels': 9}, 512, CLIP_L, 'PNDMScheduler', {}
	),
	'sd2': _sd(  # 2.x at 768 px, v-prediction (what diffusers assumes for an SD2 single file)
		'StableDiffusionPipeline',
		{**SD2_UNET, 'in_channels': 4, 'sample_size': 96, 'upcast_attention': True},
		768,
		OPENCLIP_H,
		'DDIMScheduler',
		{'prediction_type': 'v_prediction'},
	),
	'sd2-inpainting': _sd(
		'StableDiffusionInpaintPipeline',
		{**SD2_UNET, 'in_channels': 9, 'sample_size': 64},
		512,
		OPENCLIP_H,
		'PNDMScheduler',
		{},
	),
	'sdxl': _sdxl(
		'StableDiffusionXLPipeline',
		{**SDXL_BASE_UNET, 'in_channels': 4},
		[CLIP_L, OPENCLIP_G],
		{'force_zeros_for_empty_prompt': True},
	),
	'sdxl-inpainting': _sdxl(
		'StableDiffusionXLInpaintPipeline',
		{**SDXL_BASE_UNET, 'in_channels': 9},
		[CLIP_L, OPENCLIP_G],
		{'force_zeros_for_empty_prompt': True, 'requires_aesthetics_score': False},
	),
	'sdxl-refiner': _sdxl(
		'StableDiffusionXLImg2ImgPipeline',
		{
			**UNET,
			**SDXL_UNET,
			'in_channels': 4,
			'attention_head_dim': [6, 12, 12, 12],
			'block_out_channels': [384, 768, 1536, 1536],
			'cross_attention_dim': 1280,
			'down_block_types': ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
			'up_block_types': ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'],
			'projection_class_embeddings_input_dim': 2560,
			'transformer_layers_per_block': 4,
		},
		[OPENCLIP_G],
		{
			'text_encoder': [None, None],
			'tokenizer': [None, None],
			'force_zeros_for_empty_prompt': False,
			'requires_aesthetics_score': True,
		},
	),
}
