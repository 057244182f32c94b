"""The A1111 prompt language through the daemon, on the real tiny pipeline: weights, long prompts, BREAK."""

from __future__ import annotations

import numpy as np

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import Pixels, collect, pixels


async def _image(gen: gen_grpc.GenerationServiceAsyncStub, prompt: str, negative: str = '') -> Pixels:
	request = gen_pb.GenerateRequest(prompt=prompt, negative_prompt=negative, steps=2, width=64, height=64, seed=11)
	events = await collect(gen.Generate(request))
	return pixels(next(event.image for event in events if event.HasField('image')).data)


async def test_a_weight_of_one_is_the_plain_word_and_other_weights_change_the_image(
	gen: gen_grpc.GenerationServiceAsyncStub,
) -> None:
	plain = await _image(gen, 'a red fox')
	assert np.array_equal(await _image(gen, 'a red (fox:1.0)'), plain)
	assert np.array_equal(await _image(gen, 'a red fox', '(:1.0)'), await _image(gen, 'a red fox', ''))
	assert not np.array_equal(await _image(gen, 'a red (fox:1.5)'), plain)
	assert not np.array_equal(await _image(gen, 'a red [fox]'), plain)


async def test_text_past_the_first_chunk_changes_the_image_and_break_starts_a_chunk(
	gen: gen_grpc.GenerationServiceAsyncStub,
) -> None:
	first = ' '.join(['fox'] * 25)  # the demo tokenizer spells words out: 75 tokens, one full chunk
	longer = await _image(gen, first + ' snow')
	assert not np.array_equal(longer, await _image(gen, first)), 'the words after token 75 count'
	assert not np.array_equal(await _image(gen, 'red BREAK fox'), await _image(gen, 'red fox'))
