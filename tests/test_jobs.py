"""Queue, cancellation and job listing: the fake backend for timing, the real pipeline for mid-run cancel."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, next_of, rpc_status_of, until_error

Call = grpc.aio.UnaryStreamCall[gen_pb.GenerateRequest, gen_pb.GenerateEvent]


async def test_cancel_running_job_stops_within_one_step(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	call = gen.Generate(gen_pb.GenerateRequest(prompt='a fox', steps=150, seed=1))
	first = await next_of(call, 'progress')
	response = await gen.CancelJob(gen_pb.CancelJobRequest(job_id=first.job_id))
	assert response.previous_state == gen_pb.JOB_STATE_RUNNING
	rest, error = await until_error(call)
	assert error.code() == grpc.StatusCode.CANCELLED
	assert error_details(error)[0].reason == 'JOB_CANCELLED'
	assert all(event.HasField('progress') for event in rest), 'no image after a cancel: the VAE decode is skipped'
	last_step = max([first.progress.step, *(event.progress.step for event in rest)])
	# Published before the cancel was seen: at most the step in flight and the one after it.
	assert last_step <= first.progress.step + 2
	after = await collect(gen.Generate(gen_pb.GenerateRequest(prompt='next', steps=2, seed=2)))
	assert after[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


async def test_client_disconnect_cancels_the_job(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	call = gen.Generate(gen_pb.GenerateRequest(prompt='a fox', steps=150, seed=1))
	first = await next_of(call, 'progress')
	call.cancel()
	for _ in range(200):
		jobs = (await gen.ListJobs(gen_pb.ListJobsRequest())).jobs
		if not jobs:
			break
		await asyncio.sleep(0.02)
	assert not jobs, 'the job kept running after its caller went away'
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await gen.CancelJob(gen_pb.CancelJobRequest(job_id=first.job_id))
	assert 'already finished (cancelled)' in str(caught.value.details())


async def test_deadline_cancels_the_job(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	with pytest.raises(grpc.aio.AioRpcError) as caught:
		await collect(gen.Generate(gen_pb.GenerateRequest(prompt='a fox', steps=150), timeout=0.5))
	assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
	for _ in range(200):
		if not (await gen.ListJobs(gen_pb.ListJobsRequest())).jobs:
			return
		await asyncio.sleep(0.02)
	raise AssertionError('the job outlived its deadline')


async def test_queue_full_is_resource_exhausted_with_retry_info(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.05), {'limits': {'max_queue': 1}})
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='a', steps=40))
		await next_of(running, 'started')
		queued = stub.Generate(gen_pb.GenerateRequest(prompt='b', steps=1))
		await next_of(queued, 'queued')
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='c', steps=1)))
		assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
		status = rpc_status_of(caught.value)
		retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
		assert len(retry) == 1
		assert error_details(caught.value)[0].reason == 'QUEUE_FULL'
		running.cancel()
		queued.cancel()


async def test_cancel_queued_job_leaves_running_one_intact(start_fake: StartDaemon) -> None:
	backend = FakeEngine(step_s=0.02)
	daemon = await start_fake(backend)
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='a', steps=20, seed=1))
		await next_of(running, 'started')
		queued = stub.Generate(gen_pb.GenerateRequest(prompt='b', steps=20))
		waiting = await next_of(queued, 'queued')
		assert (waiting.queued.position, waiting.queued.queue_length) == (1, 1)
		listed = (await stub.ListJobs(gen_pb.ListJobsRequest())).jobs
		assert [(j.state, j.position) for j in listed] == [(gen_pb.JOB_STATE_RUNNING, 0), (gen_pb.JOB_STATE_QUEUED, 1)]
		response = await stub.CancelJob(gen_pb.CancelJobRequest(job_id=waiting.job_id))
		assert response.previous_state == gen_pb.JOB_STATE_QUEUED
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(queued)
		assert caught.value.code() == grpc.StatusCode.CANCELLED
		rest = await collect(running)
		assert rest[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
		assert [e.progress.step for e in rest if e.HasField('progress')][-1] == 20
		assert [spec.prompt for spec in backend.runs] == ['a']


async def test_queue_positions_move(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.01))
	chan, stub = stubs(daemon)
	async with chan:
		first = stub.Generate(gen_pb.GenerateRequest(prompt='a', steps=60))
		await next_of(first, 'started')
		second = stub.Generate(gen_pb.GenerateRequest(prompt='b', steps=1))
		await next_of(second, 'queued')
		third = stub.Generate(gen_pb.GenerateRequest(prompt='c', steps=1))
		events = await collect(third)
		positions = [e.queued.position for e in events if e.HasField('queued')]
		assert positions[0] == 2
		assert positions[-1] == 1
		assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
		await collect(first)
		await collect(second)


async def test_list_jobs_pages(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.05))
	chan, stub = stubs(daemon)
	async with chan:
		calls: list[Call] = []
		for i in range(4):
			calls.append(stub.Generate(gen_pb.GenerateRequest(prompt=f'p{i}', steps=20)))
			await next_of(calls[-1], 'queued')
		page = await stub.ListJobs(gen_pb.ListJobsRequest(page_size=3))
		assert len(page.jobs) == 3
		assert page.next_page_token
		rest = await stub.ListJobs(gen_pb.ListJobsRequest(page_size=3, page_token=page.next_page_token))
		assert len(rest.jobs) == 1
		assert rest.next_page_token == ''
		assert [j.prompt for j in [*page.jobs, *rest.jobs]] == ['p0', 'p1', 'p2', 'p3']
		assert page.jobs[0].create_time.seconds > 0
		for call in calls:
			call.cancel()


async def test_a_crashing_job_fails_alone(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(crash_on_prompt='boom'))
	chan, stub = stubs(daemon)
	async with chan:
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='boom', steps=2)))
		assert caught.value.code() == grpc.StatusCode.INTERNAL
		assert 'simulated pipeline crash' in str(caught.value.details())
		events = await collect(stub.Generate(gen_pb.GenerateRequest(prompt='fine', steps=2)))
		assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
