"""A daemon cut off from the shared database while it runs a job (its heartbeats fail) loses the job to another
daemon once its lease lapses; when it finishes anyway, its result is fenced off (nothing of it in history or on
disk, its caller told), the other run is the job's, and the cut-off daemon joins again with a new epoch. And
through either of two busy daemons: ListJobs lists both nodes' jobs, WatchJob follows a queued job of the other,
CancelQueuedJobs empties both queues (their callers and watchers hear CANCELLED)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from diffusiond.server.app import Daemon
from diffusiond.server.node_records import NodeStatus
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.fakes import FakeEngine
from tests.helpers import Req, next_of
from tests.nodes import start_node


async def _cut_off(node: str, epoch: int, status: NodeStatus) -> bool:
	raise OSError('network is unreachable')


async def test_a_cut_off_daemon_cannot_finish_a_job_another_took_over(
	tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
	x = await start_node(tmp_path, 'node-x', postgres_url, FakeEngine(step_s=0.04), lease_s=1.0, heartbeat_s=0.1)
	y: Daemon | None = None
	try:
		async with grpc.aio.insecure_channel(f'127.0.0.1:{x.port}') as chan_x:
			call = gen_grpc.GenerationServiceStub(chan_x).Generate(gen_pb.GenerateRequest(prompt='cut', steps=150))
			job_id = (await next_of(call, 'started')).job_id
			monkeypatch.setattr(x.heartbeat.repo, 'beat', _cut_off)  # its lease lapses while the job runs
			y = await start_node(
				tmp_path, 'node-y', postgres_url, FakeEngine(step_s=0.001), lease_s=1.0, heartbeat_s=0.1
			)
			async with grpc.aio.insecure_channel(f'127.0.0.1:{y.port}') as chan_y:
				stub_y: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_y)
				async with asyncio.timeout(60):
					while True:
						listed = await stub_y.ListJobs(gen_pb.ListJobsRequest(include_finished=True))
						taken = next((job for job in listed.jobs if job.job_id == job_id), None)
						if taken is not None and taken.state == gen_pb.JOB_STATE_SUCCEEDED:
							break
						await asyncio.sleep(0.05)
				late = await next_of(call, 'completed')
				monkeypatch.undo()  # the network is back
				async with asyncio.timeout(30):
					while x.heartbeat.epoch < 2:  # noqa: ASYNC110 (the heartbeat has no event to wait on)
						await asyncio.sleep(0.05)
				history: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(chan_y)
				records = await history.ListGenerations(history_pb.ListGenerationsRequest())
	finally:
		if y is not None:
			await y.shutdown(0.0)
		await x.shutdown(0.0)
	assert (taken.node, taken.attempts) == ('node-y', 2)
	assert late.completed.storage == gen_pb.STORAGE_STATE_NOT_STORED
	assert 'taken over by another daemon' in late.completed.storage_error
	assert [(record.id, record.node) for record in records.generations] == [(job_id, 'node-y')]
	assert not [path for path in (tmp_path / 'node-x' / 'outputs').rglob('*') if path.is_file()], 'nothing kept'
	assert x.heartbeat.epoch == 2


async def _end_of(call: grpc.aio.UnaryStreamCall[Req, gen_pb.GenerateEvent]) -> grpc.StatusCode:
	with pytest.raises(grpc.aio.AioRpcError) as end:
		await next_of(call, 'completed')
	return end.value.code()


async def test_cancel_queued_jobs_through_any_daemon_reaches_every_queue(tmp_path: Path, postgres_url: str) -> None:
	endless = ('busy x', 'busy y')  # both daemons stay busy until the test cancels them, however slow the machine
	x = await start_node(
		tmp_path, 'node-x', postgres_url, FakeEngine(0.02, endless=endless), lease_s=1, heartbeat_s=0.1
	)
	y = await start_node(
		tmp_path, 'node-y', postgres_url, FakeEngine(0.02, endless=endless), lease_s=1, heartbeat_s=0.1
	)
	try:
		async with (
			grpc.aio.insecure_channel(f'127.0.0.1:{x.port}') as chan_x,
			grpc.aio.insecure_channel(f'127.0.0.1:{y.port}') as chan_y,
		):
			stub_x: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_x)
			stub_y: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_y)
			long_x = stub_x.Generate(gen_pb.GenerateRequest(prompt='busy x', steps=150))
			long_y = stub_y.Generate(gen_pb.GenerateRequest(prompt='busy y', steps=150))
			busy = [(await next_of(call, 'started')).job_id for call in (long_x, long_y)]
			waiting = [stub_x.Generate(gen_pb.GenerateRequest(prompt=f'waits {n}', steps=2)) for n in range(2)]
			queued = [(await next_of(call, 'queued')).job_id for call in waiting]
			watched = stub_y.WatchJob(gen_pb.WatchJobRequest(job_id=queued[0]))  # a queued job of node-x's
			listed = await stub_y.ListJobs(gen_pb.ListJobsRequest())
			cancelled = await stub_y.CancelQueuedJobs(gen_pb.CancelQueuedJobsRequest())
			ends = [await _end_of(call) for call in waiting] + [await _end_of(watched)]
			for job_id in busy:
				await stub_y.CancelJob(gen_pb.CancelJobRequest(job_id=job_id))
	finally:
		await y.shutdown(0.0)
		await x.shutdown(0.0)
	states = {job.job_id: (job.state, job.node, job.position) for job in listed.jobs}
	assert states == {
		busy[1]: (gen_pb.JOB_STATE_RUNNING, 'node-y', 0),
		busy[0]: (gen_pb.JOB_STATE_RUNNING, 'node-x', 0),
		queued[0]: (gen_pb.JOB_STATE_QUEUED, '', states[queued[0]][2]),
		queued[1]: (gen_pb.JOB_STATE_QUEUED, '', states[queued[1]][2]),
	}, 'ListJobs through node-y lists both nodes'
	assert sorted(states[job_id][2] for job_id in queued) == [1, 2], 'the two calls were sent together: either order'
	assert sorted(cancelled.job_ids) == sorted(queued)
	assert ends == [grpc.StatusCode.CANCELLED] * 3
