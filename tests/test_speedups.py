"""Feature caching (DeepCache) and token merging (ToMe) on the real tiny pipeline: each changes the image, equals the
library applied to a direct diffusers call, is deterministic, and is taken off exactly (the baseline's pixels after
it); per request and as a model default, in the infotext; out-of-range values refused naming the field."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import tomesd
import torch
from DeepCache import DeepCacheSDHelper
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import TINY_MODEL
from tests.direct import direct_image, direct_pipe, set_defaults
from tests.helpers import Pixels, collect, error_details, pixels, until_error

PROMPT = 'a fox in the snow'
STEPS = 8


def _request(**fields: object) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(
		prompt=PROMPT, steps=STEPS, seed=3, width=64, height=64, sampler=gen_pb.SAMPLER_EULER
	)
	for name, value in fields.items():
		setattr(request, name, value)
	return request


async def _image(gen: gen_grpc.GenerationServiceAsyncStub, request: gen_pb.GenerateRequest) -> tuple[Pixels, str]:
	events = await collect(gen.Generate(request))
	data = next(event.image.data for event in events if event.HasField('image'))
	return pixels(data), str(Image.open(io.BytesIO(data)).info['parameters'])


def _pipe(folder: Path) -> StableDiffusionPipeline:
	return direct_pipe(folder, EulerDiscreteScheduler)


def _direct(pipe: StableDiffusionPipeline) -> Pixels:
	return direct_image(pipe, PROMPT, STEPS, 3)


async def test_deep_cache_is_the_librarys_applied_exactly_and_taken_off(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	baseline, plain_text = await _image(gen, _request())
	cached, text = await _image(gen, _request(deep_cache_interval=3))
	again, _ = await _image(gen, _request(deep_cache_interval=3))
	after, _ = await _image(gen, _request())
	pipe = _pipe(tiny_sd_dir)
	helper = DeepCacheSDHelper(pipe=pipe)
	helper.set_params(cache_interval=3, cache_branch_id=0)
	helper.enable()
	direct = _direct(pipe)
	assert not np.array_equal(cached, baseline), 'deep features reused: another image'
	np.testing.assert_array_equal(cached, direct)
	np.testing.assert_array_equal(cached, again)
	np.testing.assert_array_equal(after, baseline, err_msg='taken off exactly')
	assert 'DeepCache interval: 3' in text
	assert 'DeepCache' not in plain_text


async def test_token_merging_is_tomes_seeded_applied_exactly_and_taken_off(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	baseline, _ = await _image(gen, _request())
	merged, text = await _image(gen, _request(token_merging_ratio=0.5))
	again, _ = await _image(gen, _request(token_merging_ratio=0.5))
	after, _ = await _image(gen, _request())
	pipe = _pipe(tiny_sd_dir)
	tomesd.apply_patch(pipe, ratio=0.5, max_downsample=2)  # the tiny UNet's attention starts at half the latent
	pipe.unet._tome_info['args']['generator'] = torch.Generator('cpu').manual_seed(3)
	direct = _direct(pipe)
	assert not np.array_equal(merged, baseline), 'tokens merged: another image'
	np.testing.assert_array_equal(merged, direct)
	np.testing.assert_array_equal(merged, again, err_msg='the same seed, the same merges')
	np.testing.assert_array_equal(after, baseline, err_msg='taken off exactly')
	assert 'Token merging ratio: 0.5' in text


async def test_both_together_on_img2img_and_then_none(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	baseline, _ = await _image(gen, _request())
	buffer = io.BytesIO()
	Image.fromarray(baseline).save(buffer, format='PNG')
	both = _request(deep_cache_interval=2, token_merging_ratio=0.3, init_image=buffer.getvalue(), strength=0.6)
	changed, text = await _image(gen, both)
	after, _ = await _image(gen, _request())
	assert changed.shape == baseline.shape
	assert 'Token merging ratio: 0.3, DeepCache interval: 2' in text
	np.testing.assert_array_equal(after, baseline)


@pytest.mark.parametrize(
	('fields', 'field'),
	[({'deep_cache_interval': 11}, 'deep_cache_interval'), ({'token_merging_ratio': 0.9}, 'token_merging_ratio')],
)
async def test_speed_options_out_of_range_are_refused(
	gen: gen_grpc.GenerationServiceAsyncStub, fields: dict[str, object], field: str
) -> None:
	_, error = await until_error(gen.Generate(_request(**fields)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert error_details(error)[1] == [field]


async def test_speed_options_as_model_defaults(
	gen: gen_grpc.GenerationServiceAsyncStub, models: model_grpc.ModelServiceAsyncStub
) -> None:
	await set_defaults(models, model_pb.ModelDefaults(token_merging_ratio=0.5, deep_cache_interval=2))
	try:
		by_default, text = await _image(gen, _request())
		asked, _ = await _image(gen, _request(token_merging_ratio=0.5, deep_cache_interval=2))
		_, off = await _image(gen, _request(token_merging_ratio=0.0, deep_cache_interval=0))
		shown = (await models.GetModel(model_pb.GetModelRequest(model=TINY_MODEL))).model.defaults
	finally:
		await set_defaults(models, model_pb.ModelDefaults())
	np.testing.assert_array_equal(by_default, asked)
	assert 'Token merging ratio: 0.5, DeepCache interval: 2' in text
	assert 'Token merging' not in off, 'a request turns a default off with 0'
	assert (shown.token_merging_ratio, shown.deep_cache_interval) == (0.5, 2)
