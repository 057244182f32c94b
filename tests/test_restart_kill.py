"""SIGKILL a real `diffusiond` with one job running and four queued (two keep_running, one priority, one whose
caller went away): after a restart the running one runs again once and the queued ones follow in their order,
with their ids and seeds, and land in history; the abandoned one never runs; no file is left over. On SQLite
and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import TINY_MODEL
from tests.helpers import next_of
from tests.processes import spawn_daemon

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL

FINAL = (gen_pb.JOB_STATE_SUCCEEDED, gen_pb.JOB_STATE_FAILED, gen_pb.JOB_STATE_CANCELLED)


async def _jobs(stub: gen_grpc.GenerationServiceAsyncStub) -> dict[str, gen_pb.Job]:
	listed = await stub.ListJobs(gen_pb.ListJobsRequest(include_finished=True, page_size=100))
	return {job.job_id: job for job in listed.jobs}


async def _until_final(stub: gen_grpc.GenerationServiceAsyncStub, ids: list[str]) -> dict[str, gen_pb.Job]:
	async with asyncio.timeout(240):
		while True:
			found = await _jobs(stub)
			if all(job_id in found and found[job_id].state in FINAL for job_id in ids):
				return found
			await asyncio.sleep(0.1)


async def test_a_killed_daemon_finishes_its_jobs_after_a_restart(
	tmp_path: Path, tiny_sd_dir: Path, store_url: str | None
) -> None:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	env = {'DIFFUSIOND_STORAGE__DATABASE_URL': store_url} if store_url else {}
	process, address = await spawn_daemon(tmp_path, env=env)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			stub: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan)
			long_job = gen_pb.GenerateRequest(prompt='running', steps=60, width=64, height=64, seed=11)
			running = stub.Generate(long_job)
			started = await next_of(running, 'started')
			await next_of(running, 'progress')
			calls, ids = [], {}
			for name, request in (
				('kept 1', gen_pb.GenerateRequest(prompt='kept 1', steps=2, seed=21, keep_running=True)),
				('left', gen_pb.GenerateRequest(prompt='left', steps=2, seed=31)),
				('kept 2', gen_pb.GenerateRequest(prompt='kept 2', steps=2, seed=41, keep_running=True)),
				('urgent', gen_pb.GenerateRequest(prompt='urgent', steps=2, seed=51, priority=True)),
			):
				calls.append(stub.Generate(request))
				ids[name] = (await next_of(calls[-1], 'queued')).job_id
			calls[1].cancel()  # its caller goes away: it is cancelled, not resumed
			await _until_final(stub, [ids['left']])
			before = await _jobs(stub)
			process.kill()  # SIGKILL mid-job: no clean-up runs
			await asyncio.wait_for(process.wait(), 30)
	finally:
		if process.returncode is None:
			process.kill()
	assert before[started.job_id].state == gen_pb.JOB_STATE_RUNNING, 'the long job was still running when killed'
	process, address = await spawn_daemon(tmp_path, env=env)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			stub = gen_grpc.GenerationServiceStub(chan)
			order = [started.job_id, ids['urgent'], ids['kept 1'], ids['kept 2']]
			found = await _until_final(stub, order)
			history: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(chan)
			records = [
				(await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation for job_id in order
			]
			listed = await history.ListGenerations(history_pb.ListGenerationsRequest(page_size=100))
	finally:
		process.terminate()
		await asyncio.wait_for(process.wait(), 60)
	assert [found[job_id].state for job_id in order] == [gen_pb.JOB_STATE_SUCCEEDED] * 4
	assert [found[job_id].attempts for job_id in order] == [2, 1, 1, 1], 'one re-run, nothing else twice'
	assert [record.state for record in records] == [gen_pb.JOB_STATE_SUCCEEDED] * 4
	finished = [record.finish_time.ToDatetime() for record in records]
	assert finished == sorted(finished), 'the re-run first, then the priority job, then the others in order'
	assert list(records[0].seeds) == list(started.started.seeds) == [11]
	assert [list(record.seeds) for record in records[1:]] == [[51], [21], [41]]
	assert found[ids['left']].state == gen_pb.JOB_STATE_CANCELLED
	assert ids['left'] not in {record.id for record in listed.generations}
	assert sorted(record.id for record in listed.generations) == sorted(order)
	kept = {image.path for record in records for image in record.images}
	on_disk = {path.relative_to(tmp_path / 'outputs').as_posix() for path in (tmp_path / 'outputs').rglob('*')}
	assert {path for path in on_disk if '.' in Path(path).name} == kept, 'no stray or half-written file'
