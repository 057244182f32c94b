"""Soak: many mixed Generate streams against one real `diffusiond` process, its RSS before and after.

A third of the streams run to the end, a third are cancelled mid-way (the call is cancelled after the
first progress event), a third disconnect (their channel is closed mid-stream without a cancel). Four
client threads keep the queue busy. Errors are answers other than the expected ones for each kind.
"""

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.server.engine.demo import build_demo_model
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

MIB = 1 << 20
_WARM_UP = 30


def _spawn(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
	port_file = data_dir / 'port'
	command = [sys.executable, '-m', 'diffusiond.server', 'serve', '--port', '0', '--port-file', str(port_file)]
	command += ['--data-dir', str(data_dir), '--log-level', 'ERROR']
	env = {**os.environ, 'DIFFUSIOND_MODELS__DEMO_MODEL': 'false', 'TRANSFORMERS_VERBOSITY': 'error'}
	process = subprocess.Popen(command, env=env)
	while not (port_file.exists() and port_file.read_text().strip()):
		if process.poll() is not None:
			raise RuntimeError('the daemon exited before listening')
		time.sleep(0.1)
	return process, f'127.0.0.1:{port_file.read_text().strip()}'


def _stream(address: str, channel: grpc.Channel, index: int, steps: int) -> bool:
	"""One stream of the kind `index % 3` selects; True when it ended as that kind should."""
	request = gen_pb.GenerateRequest(prompt=f'soak {index}', steps=steps, seed=index, width=64, height=64)
	kind = index % 3
	if kind == 0:
		events = list(gen_grpc.GenerationServiceStub(channel).Generate(request, timeout=120))
		return events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	if kind == 1:
		call = gen_grpc.GenerationServiceStub(channel).Generate(request, timeout=120)
		try:
			for event in call:
				if event.HasField('progress'):
					cast('grpc.Future[gen_pb.GenerateEvent]', call).cancel()  # the call object is also a Future
		except grpc.RpcError as error:
			return isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.CANCELLED
		return True  # finished before the cancel landed
	own = grpc.insecure_channel(address)
	try:
		for event in gen_grpc.GenerationServiceStub(own).Generate(request, timeout=120):
			if event.HasField('progress'):
				break
	finally:
		own.close()  # drops the connection mid-stream: the daemon must notice and cancel the job
	return True


def run_soak(streams: int = 1000, steps: int = 6) -> list[tuple[str, str]]:
	with tempfile.TemporaryDirectory() as scratch:
		data = Path(scratch)
		build_demo_model(data / 'models' / 'tiny-sd')
		process, address = _spawn(data)
		daemon = psutil.Process(process.pid)
		channel = grpc.insecure_channel(address)
		try:
			health = health_pb2_grpc.HealthStub(channel)
			while health.Check(health_pb2.HealthCheckRequest()).status != health_pb2.HealthCheckResponse.SERVING:
				time.sleep(0.1)
			with ThreadPoolExecutor(4) as pool:
				list(pool.map(lambda i: _stream(address, channel, i, steps), range(_WARM_UP)))
				start_rss = daemon.memory_info().rss
				began = time.perf_counter()
				results = list(pool.map(lambda i: _stream(address, channel, i, steps), range(streams)))
				seconds = time.perf_counter() - began
			time.sleep(1.0)  # let the last disconnected job be noticed
			end_rss = daemon.memory_info().rss
			jobs_left = len(gen_grpc.GenerationServiceStub(channel).ListJobs(gen_pb.ListJobsRequest()).jobs)
			serving = health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
		finally:
			channel.close()
			process.terminate()
			process.wait(60)
	growth = (end_rss - start_rss) / start_rss * 100
	return [
		(f'soak: {streams} mixed streams (complete / cancel / disconnect)', f'{seconds:.1f} s'),
		('soak: daemon RSS after warm-up -> after', f'{start_rss // MIB} -> {end_rss // MIB} MiB'),
		('soak: RSS growth (goal: within 5 %)', f'{growth:+.1f} %'),
		('soak: errors / jobs left / still serving', f'{results.count(False)} / {jobs_left} / {serving}'),
		('soak: exit code on SIGTERM', str(process.returncode)),
	]
