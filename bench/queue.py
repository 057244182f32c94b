"""The queue in the store: submit → `queued` latency (p50 / p99) and jobs accepted per second, with the jobs
written to SQLite, to PostgreSQL (a throwaway cluster, where PostgreSQL is installed) and kept in memory only
(the queue before it was durable: the same daemon with its journal detached), as ratios to the in-memory one.

The worker is held by a control task while jobs are submitted, so every job waits in the queue and acceptance
is measured alone; the queued jobs are then cancelled."""

import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import torch

from bench.daemon import TimedBackend, percentile, start_daemon, stop_daemon
from diffusiond.server.app import Daemon
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.pg_cluster import binaries, cluster

JOBS = 300


def _accept(daemon: Daemon, jobs: int) -> tuple[list[float], float]:
	"""Seconds from each Generate call to its `queued` event, and the jobs accepted per second."""
	held = threading.Event()

	def hold() -> None:
		held.wait()

	daemon.manager.queue.put_control(hold)  # the worker waits: every job stays queued
	try:
		return asyncio.run(_submit(daemon.port, jobs))
	finally:
		held.set()


async def _submit(port: int, jobs: int) -> tuple[list[float], float]:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{port}') as channel:
		stub: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(channel)
		request = gen_pb.GenerateRequest(prompt='a fox', steps=1, seed=1, keep_running=True)
		latencies = []
		begin = time.perf_counter()
		for _ in range(jobs):
			start = time.perf_counter()
			call = stub.Generate(request)
			await call.read()  # the `queued` event
			latencies.append(time.perf_counter() - start)
			call.cancel()  # keep_running: the job stays queued
		rate = jobs / (time.perf_counter() - begin)
		await stub.CancelQueuedJobs(gen_pb.CancelQueuedJobsRequest())
	return latencies, rate


@contextlib.contextmanager
def _postgres() -> Iterator[str | None]:
	bin_dir = binaries()
	if bin_dir is None:
		yield None
		return
	with cluster(bin_dir) as url:
		yield url


def run_queue(jobs: int = JOBS) -> list[tuple[str, str]]:
	figures: dict[str, tuple[list[float], float]] = {}
	with tempfile.TemporaryDirectory() as scratch, _postgres() as postgres:
		stores = {'memory': None, 'SQLite': None, 'PostgreSQL': postgres}
		for name, url in stores.items():
			if name == 'PostgreSQL' and url is None:
				continue
			data_dir = Path(scratch) / name
			build_demo_model(data_dir / 'models' / 'tiny-sd')
			more: dict[str, dict[str, object]] = {'limits': {'max_queue': jobs + 10}}
			if url is not None:
				more['storage'] = {'database_url': url}
			daemon = start_daemon(data_dir, TimedBackend(torch.device('cpu'), torch.float32), more=more)
			if name == 'memory':  # the queue before it was durable
				daemon.manager.journal = None
				daemon.manager.queue.on_drop = None
			try:
				_accept(daemon, 20)  # warm-up
				figures[name] = _accept(daemon, jobs)
			finally:
				stop_daemon(daemon)
	memory = figures['memory']
	rows = []
	for name, (latencies, rate) in figures.items():
		p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
		rows.append((f'submit → queued p50 / p99 ms, {name}', f'{p50:.2f} / {p99:.2f}'))
		rows.append((f'jobs accepted/s, {name} (÷ memory)', f'{rate:.0f} ({rate / memory[1]:.2f})'))
	if 'PostgreSQL' not in figures:
		rows.append(('PostgreSQL', 'not installed: skipped'))
	return rows


if __name__ == '__main__':
	for name, value in run_queue():
		print(f'{name:<60} {value:>14}')
