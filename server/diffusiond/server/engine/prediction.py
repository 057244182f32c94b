"""SD2 single files come in two kinds with the same shapes: 768 px v-prediction (SD2.x) and 512 px epsilon
(SD2.x-base). Nothing in the file says which; A1111 tells them apart by running the UNet once
(`sd_models_config.is_using_v_parameterization_for_sd2`), and so do we: on a flat latent at the last timestep a
v-prediction UNet answers far below the input, an epsilon one does not."""

import logging

import torch
from diffusers import DiffusionPipeline, UNet2DConditionModel

log = logging.getLogger(__name__)
_CONTEXT_TOKENS = 77


def uses_v_prediction(unet: UNet2DConditionModel) -> bool:
	"""A1111's test: mean(UNet(0.5, t=999, context 0.5) - 0.5) < -1 means v-prediction."""
	config = unet.config
	options = {'device': unet.device, 'dtype': unet.dtype}
	x = torch.full((1, int(config.in_channels), 8, 8), 0.5, **options)
	context = torch.full((1, _CONTEXT_TOKENS, int(config.cross_attention_dim)), 0.5, **options)
	with torch.inference_mode():
		out = unet(x, torch.tensor([999], device=unet.device), encoder_hidden_states=context).sample
	return float((out.float() - x.float()).mean()) < -1


def settle_sd2_prediction(pipe: DiffusionPipeline, name: str) -> None:
	"""Gives an SD2 single file the scheduler of its kind (the shipped SD2 configs say v-prediction)."""
	if uses_v_prediction(pipe.unet):
		return
	log.info('model %s predicts epsilon (an SD2 512 px base model)', name)
	pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type='epsilon')
