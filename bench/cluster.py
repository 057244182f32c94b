"""Several daemons on one PostgreSQL (a throwaway cluster): the throughput of 1 vs 2 real `diffusiond` processes
(each one torch thread, as one device each) for the same jobs submitted to one of them, and the latency a
cross-daemon event adds: each progress step of a job as WatchJob delivers it through the daemon that does not run
it (relayed through the database), minus the same step through the daemon that runs it, on one clock."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import grpc

from bench.daemon import percentile
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import next_of
from tests.pg_cluster import binaries, cluster
from tests.processes import spawn_daemon

JOBS = 24
STEPS = 4
WATCHED_STEPS = 60
WATCHED_JOBS = 3
Process = asyncio.subprocess.Process


def _env(url: str, node: str) -> dict[str, str]:
	return {
		'DIFFUSIOND_STORAGE__DATABASE_URL': url,
		'DIFFUSIOND_STORAGE__NODE_ID': node,
		'DIFFUSIOND_DEVICE__CPU_THREADS': '1',
		'DIFFUSIOND_LIMITS__MAX_QUEUE': '256',
		'DIFFUSIOND_CLUSTER__HEARTBEAT_S': '0.5',
		'DIFFUSIOND_CLUSTER__POLL_S': '0.5',
	}


async def _spawn(root: Path, tiny: Path, node: str, url: str) -> tuple[Process, str]:
	shutil.copytree(tiny, root / node / 'models' / tiny.name)
	return await spawn_daemon(root / node, env=_env(url, node))


async def _finish(stub: gen_grpc.GenerationServiceAsyncStub, seed: int) -> None:
	request = gen_pb.GenerateRequest(prompt=f'bench {seed}', steps=STEPS, width=64, height=64, seed=seed)
	async for event in stub.Generate(request):
		if event.WhichOneof('event') == 'completed':
			return


async def _throughput(address: str, jobs: int) -> float:
	"""Jobs per second for `jobs` jobs submitted at once to the daemon at `address`."""
	async with grpc.aio.insecure_channel(address) as channel:
		stub: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(channel)
		await asyncio.gather(*(_finish(stub, seed) for seed in range(4)))  # warm-up
		begin = time.perf_counter()
		await asyncio.gather(*(_finish(stub, seed) for seed in range(jobs)))
		return jobs / (time.perf_counter() - begin)


async def _arrivals(stub: gen_grpc.GenerationServiceAsyncStub, job_id: str) -> dict[int, float]:
	seen: dict[int, float] = {}
	async for event in stub.WatchJob(gen_pb.WatchJobRequest(job_id=job_id)):
		if event.WhichOneof('event') == 'progress':
			seen.setdefault(event.progress.step, time.perf_counter())
	return seen


async def _added_latency(address_a: str, address_b: str) -> list[float]:
	"""Seconds each step reaches a watcher through the other daemon later than through the one running it."""
	added: list[float] = []
	async with grpc.aio.insecure_channel(address_a) as chan_a, grpc.aio.insecure_channel(address_b) as chan_b:
		stub_a: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_a)
		stub_b: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_b)
		for seed in range(WATCHED_JOBS):
			request = gen_pb.GenerateRequest(prompt='watched', steps=WATCHED_STEPS, width=64, height=64, seed=seed)
			call = stub_b.Generate(request, wait_for_ready=True)
			job_id = (await next_of(call, 'queued')).job_id
			via_a, via_b = await asyncio.gather(_arrivals(stub_a, job_id), _arrivals(stub_b, job_id))
			async for _ in call:
				pass
			listed = await stub_b.ListJobs(gen_pb.ListJobsRequest(include_finished=True, page_size=50))
			runner = next(job.node for job in listed.jobs if job.job_id == job_id)
			local, remote = (via_b, via_a) if runner == 'node-b' else (via_a, via_b)
			added += [remote[step] - local[step] for step in local if step in remote]
	return added


async def _measure(root: Path, tiny: Path, url: str) -> tuple[float, float, list[float]]:
	a, address_a = await _spawn(root, tiny, 'node-a', url)
	b: Process | None = None
	try:
		one = await _throughput(address_a, JOBS)
		b, address_b = await _spawn(root, tiny, 'node-b', url)
		two = await _throughput(address_a, JOBS)
		added = await _added_latency(address_a, address_b)
	finally:
		for process in (b, a):
			if process is not None and process.returncode is None:
				process.terminate()
				await asyncio.wait_for(process.wait(), 60)
	return one, two, added


def run_cluster() -> list[tuple[str, str]]:
	bin_dir = binaries()
	if bin_dir is None:
		return [('several daemons on one PostgreSQL', 'not installed: skipped')]
	with tempfile.TemporaryDirectory() as scratch, cluster(bin_dir) as url:
		root = Path(scratch)
		tiny = build_demo_model(root / 'tiny' / 'tiny-sd')
		one, two, added = asyncio.run(_measure(root, tiny, url))
	p50, p99 = percentile(added, 0.5) * 1000, percentile(added, 0.99) * 1000
	return [
		(f'jobs/s, {JOBS} jobs to one daemon: 1 daemon', f'{one:.2f}'),
		('jobs/s, the same: 2 daemons on one PostgreSQL (÷ 1)', f'{two:.2f} ({two / one:.2f})'),
		(f'cross-daemon event added ms p50 / p99 ({len(added)} steps)', f'{p50:.1f} / {p99:.1f}'),
	]


if __name__ == '__main__':
	for name, value in run_cluster():
		print(f'{name:<60} {value:>14}')
