"""Clip skip, in A1111's numbering, per request and as a model default, on the real tiny pipeline."""

from __future__ import annotations

import io

import grpc
import numpy as np
from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import TINY_MODEL
from tests.helpers import Pixels, collect, pixels, until_error


def _request(clip_skip: int | None = None) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(prompt='a red fox', model=TINY_MODEL, steps=2, width=64, height=64, seed=4)
	if clip_skip is not None:
		request.clip_skip = clip_skip
	return request


async def _run(gen: gen_grpc.GenerationServiceAsyncStub, request: gen_pb.GenerateRequest) -> tuple[Pixels, str, str]:
	events = await collect(gen.Generate(request))
	image = next(event for event in events if event.HasField('image')).image
	return pixels(image.data), str(Image.open(io.BytesIO(image.data)).info['parameters']), events[0].job_id


async def test_clip_skip_one_is_the_default_and_two_takes_the_penultimate_layer(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	plain, plain_text, _ = await _run(gen, _request())
	one, _, _ = await _run(gen, _request(1))
	two, two_text, job_id = await _run(gen, _request(2))
	assert np.array_equal(one, plain)
	assert not np.array_equal(two, plain)
	assert 'Clip skip' not in plain_text, 'A1111 writes it only when it is not 1'
	assert 'Clip skip: 2' in two_text
	record = await history_grpc.HistoryServiceStub(channel).GetGeneration(history_pb.GetGenerationRequest(id=job_id))
	assert record.generation.clip_skip == 2


async def test_a_model_default_applies_when_the_request_leaves_it_unset(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	models = model_grpc.ModelServiceStub(channel)
	update = model_pb.UpdateModelRequest(model=model_pb.Model(name=TINY_MODEL))
	update.model.defaults.clip_skip = 2
	update.update_mask.paths.append('defaults')
	try:
		shown = (await models.UpdateModel(update)).model
		assert shown.defaults.clip_skip == 2
		assert np.array_equal((await _run(gen, _request()))[0], (await _run(gen, _request(2)))[0])
		assert np.array_equal((await _run(gen, _request(1)))[0], (await _run(gen, _request(1)))[0])
	finally:
		update.model.defaults.ClearField('clip_skip')
		await models.UpdateModel(update)


async def test_clip_skip_out_of_range_is_refused(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	_, error = await until_error(gen.Generate(_request(13)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'clip_skip is 1 (the last CLIP layer) to 12, got 13' in str(error.details())
	_, deep = await until_error(gen.Generate(_request(4)))  # the tiny text encoder has 3 layers
	assert deep.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'this text encoder has 3 layers' in str(deep.details())
