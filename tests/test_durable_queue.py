"""The queue in the store: a restart runs the unfinished jobs again (with their ids and seeds), in their order;
what was cancelled stays cancelled; ListJobs and WatchJob know the finished ones across restarts."""

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy import update

from diffusiond.server.app import Daemon
from diffusiond.server.job_records import StoredJob
from diffusiond.server.schemas import ControlRequest, GenerateParams, JobState
from diffusiond.server.store.database import Database
from diffusiond.server.store.tables import JobRow
from diffusiond.server.tasks import task_request
from diffusiond.server.tasks.inpaint import InpaintRequest
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, next_of, rpc_error

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL

FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


async def stored(daemon: Daemon, job_id: str) -> StoredJob:
	found = await daemon.jobs.get(job_id)
	assert found is not None, f'job {job_id} is not in the store'
	return found


async def settled(daemon: Daemon, job_ids: list[str], timeout_s: float = 30.0) -> list[StoredJob]:
	"""The jobs once every one has a final state in the store."""
	async with asyncio.timeout(timeout_s):
		while True:
			found = [await stored(daemon, job_id) for job_id in job_ids]
			if all(job.state in FINAL for job in found):
				return found
			await asyncio.sleep(0.02)


async def test_a_restart_runs_the_unfinished_jobs_again_in_order(start_fake: StartDaemon) -> None:
	first = await start_fake(FakeEngine(step_s=0.05))
	chan, stub = stubs(first)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='running', steps=150, seed=5, keep_running=True))
		running_id = (await next_of(running, 'started')).job_id
		kept = []
		for prompt in ('kept 1', 'kept 2'):
			call = stub.Generate(gen_pb.GenerateRequest(prompt=prompt, steps=2, seed=9, keep_running=True))
			kept.append((await next_of(call, 'queued')).job_id)
		attached = stub.Generate(gen_pb.GenerateRequest(prompt='attached', steps=2))
		attached_id = (await next_of(attached, 'queued')).job_id
		left = stub.Generate(gen_pb.GenerateRequest(prompt='left', steps=2))
		left_id = (await next_of(left, 'queued')).job_id
		left.cancel()
		await settled(first, [left_id])
		await first.shutdown(0.0)
	backend = FakeEngine(step_s=0.001)
	second = await start_fake(backend)
	resumed = await settled(second, [running_id, *kept])
	chan, stub = stubs(second)
	async with chan:
		listed = await stub.ListJobs(gen_pb.ListJobsRequest(include_finished=True))
		watch = await rpc_error(collect(stub.WatchJob(gen_pb.WatchJobRequest(job_id=left_id))))
		cancel = await rpc_error(stub.CancelJob(gen_pb.CancelJobRequest(job_id=attached_id)))
	assert second.resumed.resumed == [running_id, *kept]
	assert second.resumed.rerun == [running_id]
	assert [spec.prompt for spec in backend.runs] == ['running', 'kept 1', 'kept 2']
	assert backend.runs[0].seeds == [5]
	assert backend.runs[1].seeds == [9]
	assert [job.state for job in resumed] == [JobState.SUCCEEDED] * 3
	assert [job.attempts for job in resumed] == [2, 1, 1]
	for job_id in (running_id, *kept):
		assert (await second.history.get(job_id)).state is JobState.SUCCEEDED
	assert (await stored(second, attached_id)).reason == 'CANCELLED_BY_SHUTDOWN'
	assert (await stored(second, left_id)).reason == 'JOB_CANCELLED'
	by_id = {job.job_id: job for job in listed.jobs}
	assert (by_id[left_id].state, by_id[left_id].end_reason) == (gen_pb.JOB_STATE_CANCELLED, 'JOB_CANCELLED')
	assert (by_id[running_id].state, by_id[running_id].attempts) == (gen_pb.JOB_STATE_SUCCEEDED, 2)
	assert by_id[running_id].finish_time.ToDatetime(UTC) > by_id[running_id].create_time.ToDatetime(UTC)
	assert watch.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert error_details(watch)[0].reason == 'JOB_ALREADY_FINISHED'
	assert error_details(cancel)[0].reason == 'JOB_ALREADY_FINISHED'
	assert 'CANCELLED_BY_SHUTDOWN' in str(cancel.details())


async def test_a_job_interrupted_twice_or_past_its_deadline_is_not_run(start_fake: StartDaemon) -> None:
	first = await start_fake(FakeEngine(step_s=0.05))
	chan, stub = stubs(first)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='running', steps=150, keep_running=True))
		running_id = (await next_of(running, 'started')).job_id
		late = stub.Generate(gen_pb.GenerateRequest(prompt='late', steps=2, keep_running=True), timeout=600)
		late_id = (await next_of(late, 'queued')).job_id
		await first.shutdown(0.0)
	database = Database(first.database.url)
	try:
		async with database.sessions.begin() as session:
			await session.execute(update(JobRow).where(JobRow.id == running_id).values(attempts=2))  # died twice
			past = datetime.now(UTC) - timedelta(seconds=1)
			await session.execute(update(JobRow).where(JobRow.id == late_id).values(deadline_at=past))
	finally:
		await database.close()
	backend = FakeEngine(step_s=0.001)
	second = await start_fake(backend)
	twice, expired = await settled(second, [running_id, late_id])
	assert backend.runs == []
	assert (twice.state, twice.reason) == (JobState.FAILED, 'INTERRUPTED_TWICE')
	assert (expired.state, expired.reason) == (JobState.CANCELLED, 'DEADLINE_EXCEEDED')


async def test_resuming_off_ends_them_cancelled_by_restart(start_fake: StartDaemon) -> None:
	first = await start_fake(FakeEngine(step_s=0.05))
	chan, stub = stubs(first)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='running', steps=150, keep_running=True))
		running_id = (await next_of(running, 'started')).job_id
		queued = stub.Generate(gen_pb.GenerateRequest(prompt='queued', steps=2, keep_running=True))
		queued_job = (await next_of(queued, 'queued')).job_id
		await first.shutdown(0.0)
	backend = FakeEngine(step_s=0.001)
	second = await start_fake(backend, {'queue': {'resume': False}})
	ended = await settled(second, [running_id, queued_job])
	assert backend.runs == []
	assert [(job.state, job.reason) for job in ended] == [(JobState.CANCELLED, 'CANCELLED_BY_RESTART')] * 2
	assert second.resumed.ended == {running_id: 'CANCELLED_BY_RESTART', queued_job: 'CANCELLED_BY_RESTART'}


async def test_list_jobs_filters_finished_jobs_by_state_and_pages(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.001))
	chan, stub = stubs(daemon)
	async with chan:
		done = [
			(await collect(stub.Generate(gen_pb.GenerateRequest(prompt=f'p{i}', steps=1))))[0].job_id for i in (0, 1, 2)
		]
		await settled(daemon, done)
		plain = await stub.ListJobs(gen_pb.ListJobsRequest())
		succeeded = await stub.ListJobs(gen_pb.ListJobsRequest(states=[gen_pb.JOB_STATE_SUCCEEDED], page_size=2))
		rest = await stub.ListJobs(
			gen_pb.ListJobsRequest(
				states=[gen_pb.JOB_STATE_SUCCEEDED], page_size=2, page_token=succeeded.next_page_token
			)
		)
		queued_only = await stub.ListJobs(
			gen_pb.ListJobsRequest(states=[gen_pb.JOB_STATE_QUEUED], include_finished=True)
		)
		unknown = await rpc_error(stub.ListJobs(gen_pb.ListJobsRequest(states=[gen_pb.JobState.ValueType(99)])))
		unset = await rpc_error(stub.ListJobs(gen_pb.ListJobsRequest(states=[gen_pb.JOB_STATE_UNSPECIFIED])))
	assert list(plain.jobs) == []
	assert [job.job_id for job in [*succeeded.jobs, *rest.jobs]] == list(reversed(done)), 'latest first, each once'
	assert rest.next_page_token == ''
	assert all(job.HasField('finish_time') and job.end_reason == '' for job in succeeded.jobs)
	assert list(queued_only.jobs) == []
	assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert '99 is not a JobState value' in str(unknown.details())
	assert unset.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'states holds 0, which is no job state' in str(unset.details())


def test_a_stored_request_keeps_its_source_images_and_control_images() -> None:
	"""The journal's JSON: bytes as base64, the task's kind kept, so a resumed inpainting job is the same job."""
	image, mask, control = bytes(range(256)), b'\x00\xff' * 64, b'\x89PNG\xfe'
	params = GenerateParams(
		prompt='fox',
		seed=3,
		task=task_request(image, mask, 0.6, 4, None),
		controlnets=[ControlRequest(ref='canny', image=control, scale=0.5)],
	)
	again = GenerateParams.model_validate_json(params.model_dump_json())
	assert again == params
	assert isinstance(again.task, InpaintRequest)
	assert (again.task.init_image, again.task.mask_image) == (image, mask)
	assert again.controlnets[0].image == control
