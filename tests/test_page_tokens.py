"""Page tokens from outside are opaque bytes that may be anything: every bad one is INVALID_ARGUMENT."""

from __future__ import annotations

import base64
from collections.abc import Awaitable

import grpc
import pytest

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import StartDaemon
from tests.helpers import error_details, rpc_error


def _token(text: bytes) -> str:
	return base64.urlsafe_b64encode(text).decode()


BAD_TOKENS = [
	_token(b'[' * 100_000 + b']' * 100_000),  # deeply nested JSON
	_token(b'offset:' + b'9' * 5000),  # an offset far past any integer column
	_token(b'offset:' + '\u0663'.encode()),  # a digit that is not ASCII
	_token(b'["9999-12-31T23:59:59", 1, 2]'),
	_token(b'{"a": 1}'),
	'%%%not base64',
]


@pytest.mark.parametrize('token', BAD_TOKENS)
async def test_bad_page_tokens_are_invalid_argument(start_fake: StartDaemon, token: str) -> None:
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		calls: list[Awaitable[object]] = [
			history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest(page_token=token)),
			model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest(page_token=token)),
			lora_grpc.LoraServiceStub(chan).ListLoras(lora_pb.ListLorasRequest(page_token=token)),
			gen_grpc.GenerationServiceStub(chan).ListJobs(gen_pb.ListJobsRequest(page_token=token)),
		]
		errors = [await rpc_error(call) for call in calls]
	for error in errors:
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert error_details(error)[1] == ['page_token']
