"""Telling SD2 768 px v-prediction files from 512 px epsilon ones, as A1111 does: one UNet call."""

import pytest
import torch
from diffusers import DDIMScheduler

from diffusiond.server.engine.demo import build_pipeline
from diffusiond.server.engine.prediction import settle_sd2_prediction, uses_v_prediction


@pytest.mark.parametrize(('answer', 'v_prediction'), [(-2.0, True), (0.0, False), (0.4, False)])
def test_the_unet_answer_on_a_flat_latent_says_the_kind(answer: float, v_prediction: bool) -> None:
	pipe = build_pipeline()
	pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, prediction_type='v_prediction')
	with torch.no_grad():
		pipe.unet.conv_out.weight.zero_()
		pipe.unet.conv_out.bias.fill_(answer)  # the UNet answers `answer` everywhere
	assert uses_v_prediction(pipe.unet) is v_prediction
	settle_sd2_prediction(pipe, 'sd2-file')
	assert pipe.scheduler.config.prediction_type == ('v_prediction' if v_prediction else 'epsilon')
	assert isinstance(pipe.scheduler, DDIMScheduler)
