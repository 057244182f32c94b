"""WatchJob re-attaches to queued and running jobs; keep_running lets a job outlive its caller."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc

from diffusiond.client.cli import main as ctl
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, kinds, next_of, rpc_error


async def test_a_watcher_gets_the_state_so_far_then_every_event(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.02))
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='running', steps=20, num_images=2))
		job_id = (await next_of(running, 'progress')).job_id
		queued = stub.Generate(gen_pb.GenerateRequest(prompt='queued', steps=2))
		queued_id = (await next_of(queued, 'queued')).job_id
		watched_queued = await anext(aiter(stub.WatchJob(gen_pb.WatchJobRequest(job_id=queued_id))))
		watched = await collect(stub.WatchJob(gen_pb.WatchJobRequest(job_id=job_id)))
		original = await collect(running)
		await collect(queued)
	assert watched_queued.queued.position == 1
	names = kinds(watched)
	assert names[0] == 'started'
	assert names.count('image') == 2
	assert names[-1] == 'completed'
	assert len(watched[0].started.seeds) == 2
	assert original[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert all(event.job_id == job_id for event in watched)


async def test_leaving_a_watch_never_cancels_the_job(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.02))
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='keep going', steps=15))
		job_id = (await next_of(running, 'started')).job_id
		watch = stub.WatchJob(gen_pb.WatchJobRequest(job_id=job_id))
		await next_of(watch, 'progress')
		watch.cancel()
		events = await collect(running)
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


async def test_keep_running_outlives_the_caller_and_lands_in_history(start_fake: StartDaemon, tmp_path: Path) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.03))
	chan, stub = stubs(daemon)
	async with chan:
		call = stub.Generate(gen_pb.GenerateRequest(prompt='detached', steps=20, keep_running=True))
		job_id = (await next_of(call, 'started')).job_id
		call.cancel()  # the caller goes away
		await asyncio.sleep(0.1)
		still = [job.job_id for job in (await stub.ListJobs(gen_pb.ListJobsRequest())).jobs]
		out = tmp_path / 'watched.png'
		address = f'127.0.0.1:{daemon.port}'
		code = await asyncio.to_thread(ctl, ['--address', address, 'jobs', 'watch', job_id, '-o', str(out)])
		record = await history_grpc.HistoryServiceStub(chan).GetGeneration(history_pb.GetGenerationRequest(id=job_id))
		finished = await rpc_error(anext(aiter(stub.WatchJob(gen_pb.WatchJobRequest(job_id=job_id)))))
		unknown = await rpc_error(anext(aiter(stub.WatchJob(gen_pb.WatchJobRequest(job_id=str(uuid.uuid4()))))))
		malformed = await rpc_error(anext(aiter(stub.WatchJob(gen_pb.WatchJobRequest(job_id='nope')))))
	assert still == [job_id]
	assert code == 0
	assert out.read_bytes().startswith(b'\x89PNG')
	assert record.generation.state == gen_pb.JOB_STATE_SUCCEEDED
	assert finished.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert error_details(finished)[0].reason == 'JOB_ALREADY_FINISHED'
	assert 'in history' in str(finished.details())
	assert unknown.code() == grpc.StatusCode.NOT_FOUND
	assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
