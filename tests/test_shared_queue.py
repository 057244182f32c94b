"""Two real `diffusiond` processes on one real PostgreSQL share one queue: jobs submitted to one run on both, with
the images a single daemon gives for the same seeds; WatchJob and CancelJob reach a job through a daemon that does
not run it; a daemon killed mid-job loses nothing (its running job and its queue finish on the other, once each
in history) and rejoins when it comes back."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import TINY_MODEL
from tests.helpers import Req, next_of, pixels
from tests.processes import spawn_daemon

FINAL = (gen_pb.JOB_STATE_SUCCEEDED, gen_pb.JOB_STATE_FAILED, gen_pb.JOB_STATE_CANCELLED)
Process = asyncio.subprocess.Process


def _env(url: str | None, node: str) -> dict[str, str]:
	env = {
		'DIFFUSIOND_STORAGE__NODE_ID': node,
		'DIFFUSIOND_DEVICE__CPU_THREADS': '1',  # the daemons share the cores
		'DIFFUSIOND_LIMITS__MAX_STEPS': '5000',  # a long job keeps a daemon busy
		'DIFFUSIOND_LIMITS__MAX_QUEUE': '64',
		'DIFFUSIOND_CLUSTER__HEARTBEAT_S': '0.2',
		'DIFFUSIOND_CLUSTER__LEASE_S': '2',
		'DIFFUSIOND_CLUSTER__POLL_S': '0.2',
	}
	return env | ({'DIFFUSIOND_STORAGE__DATABASE_URL': url} if url else {})


async def _spawn(root: Path, tiny: Path, node: str, url: str | None) -> tuple[Process, str]:
	data = root / node
	if not (data / 'models' / TINY_MODEL).exists():
		shutil.copytree(tiny, data / 'models' / TINY_MODEL)
	return await spawn_daemon(data, env=_env(url, node))


async def _stop(process: Process) -> None:
	if process.returncode is None:
		process.terminate()
		await asyncio.wait_for(process.wait(), 60)


def _stub(channel: grpc.aio.Channel) -> gen_grpc.GenerationServiceAsyncStub:
	return gen_grpc.GenerationServiceStub(channel)


async def _jobs(stub: gen_grpc.GenerationServiceAsyncStub) -> dict[str, gen_pb.Job]:
	listed = await stub.ListJobs(gen_pb.ListJobsRequest(include_finished=True, page_size=200))
	return {job.job_id: job for job in listed.jobs}


async def _until(stub: gen_grpc.GenerationServiceAsyncStub, job_id: str, state: int, node: str = '') -> gen_pb.Job:
	async with asyncio.timeout(120):
		while True:
			job = (await _jobs(stub)).get(job_id)
			if job is not None and job.state == state and (not node or job.node == node):
				return job
			await asyncio.sleep(0.05)


async def _image(call: grpc.aio.UnaryStreamCall[Req, gen_pb.GenerateEvent]) -> bytes:
	data = b''
	async for event in call:
		if event.WhichOneof('event') == 'image':
			data = event.image.data
		if event.WhichOneof('event') == 'completed':
			assert event.completed.state == gen_pb.JOB_STATE_SUCCEEDED
			return data
	raise AssertionError('the stream ended without completed')


def _request(seed: int, steps: int = 2) -> gen_pb.GenerateRequest:
	return gen_pb.GenerateRequest(prompt=f'shared {seed}', steps=steps, width=64, height=64, seed=seed)


async def test_thirty_jobs_submitted_to_one_daemon_run_on_both(
	tmp_path: Path, tiny_sd_dir: Path, postgres_url: str
) -> None:
	a, address_a = await _spawn(tmp_path, tiny_sd_dir, 'node-a', postgres_url)
	b, address_b = await _spawn(tmp_path, tiny_sd_dir, 'node-b', postgres_url)
	try:
		async with grpc.aio.insecure_channel(address_a) as chan_a, grpc.aio.insecure_channel(address_b) as chan_b:
			stub_a, stub_b = _stub(chan_a), _stub(chan_b)
			calls = [stub_a.Generate(_request(seed)) for seed in range(100, 130)]
			ids = [(await next_of(call, 'queued')).job_id for call in calls]
			images = await asyncio.gather(*(_image(call) for call in calls))
			seen_a, seen_b = await _jobs(stub_a), await _jobs(stub_b)
			history: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(chan_b)
			listed = await history.ListGenerations(history_pb.ListGenerationsRequest(page_size=100))
			made_by_b = next(record.id for record in listed.generations if record.node == 'node-b')
			history_a: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(chan_a)
			wanted = history_pb.GetImageRequest(generation_id=made_by_b, index=0)
			fetched = await history_a.GetImage(wanted)  # its file is in node-b's outputs folder
			await _stop(b)
			with pytest.raises(grpc.aio.AioRpcError) as gone:
				await history_a.GetImage(wanted)
	finally:
		await _stop(b)
		await _stop(a)
	assert fetched.data == images[ids.index(made_by_b)], 'GetImage through the daemon that does not hold the file'
	assert gone.value.code() == grpc.StatusCode.UNAVAILABLE, 'its node stopped: ask again later'
	nodes = [seen_a[job_id].node for job_id in ids]
	assert {seen_a[job_id].state for job_id in ids} == {gen_pb.JOB_STATE_SUCCEEDED}
	assert min(nodes.count('node-a'), nodes.count('node-b')) >= 3, f'spread over both: {nodes}'
	assert {job_id: seen_b[job_id].node for job_id in ids} == dict(zip(ids, nodes, strict=True)), 'the same answer'
	assert sorted(record.id for record in listed.generations) == sorted(ids), 'each job once in history'
	assert {record.id: record.node for record in listed.generations} == dict(zip(ids, nodes, strict=True))
	alone, address = await _spawn(tmp_path, tiny_sd_dir, 'alone', None)
	picked = [nodes.index('node-a'), nodes.index('node-b'), len(nodes) - 1 - nodes[::-1].index('node-b')]
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			reference = [await _image(_stub(chan).Generate(_request(100 + index))) for index in picked]
	finally:
		await _stop(alone)
	for index, expected in zip(picked, reference, strict=True):
		assert (pixels(images[index]) == pixels(expected)).all(), f'job {index} ({nodes[index]}) as a single daemon'


async def test_watch_cancel_and_a_killed_daemon_across_nodes(
	tmp_path: Path, tiny_sd_dir: Path, postgres_url: str
) -> None:
	a, address_a = await _spawn(tmp_path, tiny_sd_dir, 'node-a', postgres_url)
	b, address_b = await _spawn(tmp_path, tiny_sd_dir, 'node-b', postgres_url)
	try:
		async with grpc.aio.insecure_channel(address_a) as chan_a, grpc.aio.insecure_channel(address_b) as chan_b:
			stub_a, stub_b = _stub(chan_a), _stub(chan_b)
			blocker = stub_a.Generate(_request(1, steps=5000))  # keeps node-a busy
			blocker_id = (await next_of(blocker, 'started')).job_id
			far = stub_a.Generate(_request(2, steps=5000))  # node-b is idle: it claims this one
			far_id = (await next_of(far, 'queued')).job_id
			await _until(stub_a, far_id, gen_pb.JOB_STATE_RUNNING, 'node-b')
			watched_far = stub_a.WatchJob(gen_pb.WatchJobRequest(job_id=far_id))  # through the daemon not running it
			far_step = (await next_of(watched_far, 'progress')).progress.step
			watched_near = stub_b.WatchJob(gen_pb.WatchJobRequest(job_id=blocker_id))
			near_step = (await next_of(watched_near, 'progress')).progress.step
			cancelled = await stub_a.CancelJob(gen_pb.CancelJobRequest(job_id=far_id))
			with pytest.raises(grpc.aio.AioRpcError) as far_end:
				await _image(far)
			with pytest.raises(grpc.aio.AioRpcError) as watch_end:
				await _image(watched_far)
			watched_near.cancel()

			killed = stub_a.Generate(_request(3, steps=400))  # claimed by node-b, which is killed while it runs it
			killed_id = (await next_of(killed, 'queued')).job_id
			await _until(stub_a, killed_id, gen_pb.JOB_STATE_RUNNING, 'node-b')
			queued_b = [stub_b.Generate(_request(seed)) for seed in (4, 5)]
			queued_ids = [(await next_of(call, 'queued')).job_id for call in queued_b]
			b.kill()
			await asyncio.wait_for(b.wait(), 30)
			await stub_a.CancelJob(gen_pb.CancelJobRequest(job_id=blocker_id))  # node-a is free for them
			rerun = await _image(killed)  # its caller on node-a hears the run that node-a took over
			done = [await _until(stub_a, job_id, gen_pb.JOB_STATE_SUCCEEDED) for job_id in [killed_id, *queued_ids]]
			history: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(chan_a)
			listed = await history.ListGenerations(history_pb.ListGenerationsRequest(page_size=100))
		b, address_b = await _spawn(tmp_path, tiny_sd_dir, 'node-b', postgres_url)
		async with grpc.aio.insecure_channel(address_b) as chan_b:
			again = await _image(_stub(chan_b).Generate(_request(6)))
			system: sys_grpc.SystemServiceAsyncStub = sys_grpc.SystemServiceStub(chan_b)
			nodes = {node.node: node for node in (await system.GetSystemInfo(sys_pb.GetSystemInfoRequest())).nodes}
	finally:
		await _stop(b)
		await _stop(a)
	assert min(far_step, near_step) >= 1, 'progress of a job running on the other daemon'
	assert cancelled.previous_state == gen_pb.JOB_STATE_RUNNING
	assert far_end.value.code() == watch_end.value.code() == grpc.StatusCode.CANCELLED
	assert rerun
	assert again
	assert [job.node for job in done] == ['node-a'] * 3
	assert [job.attempts for job in done] == [2, 1, 1], 'the killed run counted, the queued ones ran once'
	recorded = [record.id for record in listed.generations]
	assert sorted(recorded) == sorted({*recorded}), 'nothing twice in history'
	assert {killed_id, *queued_ids} <= set(recorded)
	assert not {far_id, blocker_id} & set(recorded), 'the cancelled ones left no record'
	assert (nodes['node-b'].alive, nodes['node-b'].epoch, nodes['node-a'].alive) == (True, 2, True)
