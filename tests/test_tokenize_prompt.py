"""TokenizePrompt and the prompt report of `started`: how a prompt is read, before and as a job runs."""

from __future__ import annotations

import grpc
import pytest

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.conftest import TINY_MODEL
from tests.helpers import collect, rpc_error


async def test_a_prompt_is_reported_in_chunks_weights_and_lora_tags(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	found = await gen.TokenizePrompt(
		gen_pb.TokenizePromptRequest(prompt='a (red:1.3) fox <lora:nope:0.5> BREAK snow', negative_prompt='[blur]')
	)
	assert found.model == TINY_MODEL, 'the default model counted'
	report = found.prompt
	assert len(report.chunk_tokens) == 2, 'BREAK starts a second chunk'
	assert report.token_count == 75 + report.chunk_tokens[1]
	assert [(piece.text, round(piece.weight, 4)) for piece in report.fragments] == [
		('a ', 1.0),
		('red', 1.3),
		(' fox', 1.0),
		('snow', 1.0),
	]
	assert [(lora.tag, lora.name, lora.weight, lora.lora_id) for lora in report.loras] == [
		('<lora:nope:0.5>', 'nope', 0.5, '')
	]
	assert list(found.unknown_loras) == ['nope']
	assert found.negative_prompt.fragments[0].weight == pytest.approx(1 / 1.1)


async def test_started_carries_the_report_and_bad_input_is_refused(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	request = gen_pb.GenerateRequest(prompt='a (fox:1.2)', steps=1, width=64, height=64)
	started = (await collect(gen.Generate(request)))[1].started
	checked = await gen.TokenizePrompt(gen_pb.TokenizePromptRequest(prompt='a (fox:1.2)'))
	assert started.prompt_report == checked.prompt
	assert started.prompt_report.token_count == sum(started.prompt_report.chunk_tokens) > 0
	too_long = await rpc_error(gen.TokenizePrompt(gen_pb.TokenizePromptRequest(prompt='x' * 20_000)))
	assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT
	missing = await rpc_error(gen.TokenizePrompt(gen_pb.TokenizePromptRequest(prompt='x', model='no-such-model')))
	assert missing.code() == grpc.StatusCode.NOT_FOUND
