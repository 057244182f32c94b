"""Queue control: priority jobs go to the front (behind earlier priority jobs); cancel every queued job."""

from __future__ import annotations

import asyncio

import grpc

from diffusiond.client.cli import main as ctl
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, next_of, until_error

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


async def test_priority_jobs_run_first_in_their_own_order(start_fake: StartDaemon) -> None:
	backend = FakeEngine(step_s=0.02)
	daemon = await start_fake(backend)
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='running', steps=20))
		await next_of(running, 'started')
		calls = []
		for prompt, priority in (('b', False), ('c', False), ('urgent 1', True), ('urgent 2', True)):
			call = stub.Generate(gen_pb.GenerateRequest(prompt=prompt, steps=1, priority=priority))
			await next_of(call, 'queued')
			calls.append(call)
		listed = [job.prompt for job in (await stub.ListJobs(gen_pb.ListJobsRequest())).jobs]
		await asyncio.gather(collect(running), *(collect(call) for call in calls))
	assert listed == ['running', 'urgent 1', 'urgent 2', 'b', 'c']
	assert [spec.prompt for spec in backend.runs] == ['running', 'urgent 1', 'urgent 2', 'b', 'c']


async def test_cancel_queued_jobs_leaves_the_running_one(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.02))
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='running', steps=20))
		await next_of(running, 'started')
		queued, ids = [], []
		for i in range(2):  # one at a time: two calls opened together may reach the server in either order
			queued.append(stub.Generate(gen_pb.GenerateRequest(prompt=f'q{i}', steps=1)))
			ids.append((await next_of(queued[-1], 'queued')).job_id)
		response = await stub.CancelQueuedJobs(gen_pb.CancelQueuedJobsRequest())
		ends = [await until_error(call) for call in queued]
		done = await collect(running)
		again = await asyncio.to_thread(ctl, ['--address', f'127.0.0.1:{daemon.port}', 'jobs', 'clear'])
	assert list(response.job_ids) == ids
	for _, error in ends:
		assert error.code() == grpc.StatusCode.CANCELLED
		assert 'CancelQueuedJobs' in str(error.details())
		assert error_details(error)[0].reason == 'JOB_CANCELLED'
	assert done[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert again == 0
