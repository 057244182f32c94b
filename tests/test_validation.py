"""Bad input gets INVALID_ARGUMENT naming the field, before anything is queued."""

from __future__ import annotations

import math

import grpc
import pytest

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import collect, error_details

CASES: list[tuple[str, gen_pb.GenerateRequest]] = [
	('width', gen_pb.GenerateRequest(width=513)),
	('width', gen_pb.GenerateRequest(width=56)),
	('height', gen_pb.GenerateRequest(height=4096)),
	('height', gen_pb.GenerateRequest(height=0)),
	('steps', gen_pb.GenerateRequest(steps=0)),
	('steps', gen_pb.GenerateRequest(steps=151)),
	('guidance_scale', gen_pb.GenerateRequest(guidance_scale=math.nan)),
	('guidance_scale', gen_pb.GenerateRequest(guidance_scale=math.inf)),
	('guidance_scale', gen_pb.GenerateRequest(guidance_scale=-1.0)),
	('guidance_scale', gen_pb.GenerateRequest(guidance_scale=31.0)),
	('num_images', gen_pb.GenerateRequest(num_images=0)),
	('num_images', gen_pb.GenerateRequest(num_images=9)),
	('seed', gen_pb.GenerateRequest(seed=2**63)),
	('seed', gen_pb.GenerateRequest(seed=2**63 - 1, num_images=2)),
	('quality', gen_pb.GenerateRequest(quality=0, output_format=gen_pb.IMAGE_FORMAT_JPEG)),
	('quality', gen_pb.GenerateRequest(quality=101, output_format=gen_pb.IMAGE_FORMAT_WEBP)),
	('quality', gen_pb.GenerateRequest(quality=90)),
	('prompt', gen_pb.GenerateRequest(prompt='x' * 4001)),
	('negative_prompt', gen_pb.GenerateRequest(negative_prompt='bad\x00')),
]


@pytest.mark.parametrize(('field', 'request_'), CASES, ids=[f'{field}-{i}' for i, (field, _) in enumerate(CASES)])
async def test_invalid_field_is_named(
	gen: gen_grpc.GenerationServiceAsyncStub, field: str, request_: gen_pb.GenerateRequest
) -> None:
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await collect(gen.Generate(request_))
	error = caught.value
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	info, fields = error_details(error)
	assert info.reason == 'INVALID_ARGUMENT'
	assert info.domain == 'diffusiond.v1'
	assert fields == [field]
	assert field in str(error.details())


async def test_every_violation_is_reported_at_once(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await collect(gen.Generate(gen_pb.GenerateRequest(width=513, steps=0, num_images=99)))
	_, fields = error_details(caught.value)
	assert fields == ['width', 'steps', 'num_images']
	assert 'width must be a multiple of 8 between 64 and 2048, got 513' in str(caught.value.details())


async def test_limits_come_from_settings(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	"""The boundary values themselves are accepted (validation only; no job runs past the check)."""
	request = gen_pb.GenerateRequest(prompt='x', width=64, height=64, steps=1, guidance_scale=0.0, num_images=1, seed=0)
	events = await collect(gen.Generate(request))
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


async def test_list_jobs_rejects_bad_paging(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	for request, field in (
		(gen_pb.ListJobsRequest(page_size=-1), 'page_size'),
		(gen_pb.ListJobsRequest(page_token='not-a-token'), 'page_token'),
	):
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await gen.ListJobs(request)
		assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert error_details(caught.value)[1] == [field]


async def test_cancel_job_errors(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await gen.CancelJob(gen_pb.CancelJobRequest(job_id='nope'))
	assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await gen.CancelJob(gen_pb.CancelJobRequest(job_id='00000000-0000-0000-0000-000000000000'))
	assert caught.value.code() == grpc.StatusCode.NOT_FOUND
	assert error_details(caught.value)[0].reason == 'JOB_NOT_FOUND'
	events = await collect(gen.Generate(gen_pb.GenerateRequest(prompt='x', steps=1)))
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await gen.CancelJob(gen_pb.CancelJobRequest(job_id=events[0].job_id))
	assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert 'already finished (succeeded)' in str(caught.value.details())
