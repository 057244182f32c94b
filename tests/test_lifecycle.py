"""Health, reflection, system info, loop responsiveness and graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from diffusiond.server.app import Daemon
from diffusiond.server.lock import DataDirLock
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import TINY_MODEL, StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, next_of, rpc_error

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_of(daemon: Daemon, service: str = '') -> int:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		response = await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(service=service))
		return int(response.status)


async def test_reflection_lists_every_service(channel: grpc.aio.Channel) -> None:
	stub = reflection_pb2_grpc.ServerReflectionStub(channel)

	async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
		yield reflection_pb2.ServerReflectionRequest(list_services='')

	responses = [r async for r in stub.ServerReflectionInfo(requests())]
	names = {s.name for s in responses[0].list_services_response.service}
	assert {'diffusiond.v1.GenerationService', 'diffusiond.v1.SystemService', 'grpc.health.v1.Health'} <= names


async def test_system_info(system: sys_grpc.SystemServiceAsyncStub, tiny_sd_dir: Path) -> None:
	info = await system.GetSystemInfo(sys_pb.GetSystemInfoRequest())
	assert info.version
	assert info.device.kind == sys_pb.DEVICE_KIND_CPU
	assert info.device.dtype == 'float32'
	assert info.default_model == TINY_MODEL
	assert [m.name for m in info.loaded_models] == [TINY_MODEL]
	assert info.loaded_models[0].demo is True
	assert info.loaded_models[0].native_size == 64
	assert info.loaded_models[0].path == str(tiny_sd_dir)
	assert info.process_rss_bytes > 10 * 2**20
	assert info.queue_capacity == 16
	assert {lib.name for lib in info.libraries} >= {'torch', 'diffusers'}


async def test_unary_rpcs_answer_promptly_while_generating(
	gen: gen_grpc.GenerationServiceAsyncStub,
	system: sys_grpc.SystemServiceAsyncStub,
	health: health_pb2_grpc.HealthStub,
) -> None:
	call = gen.Generate(gen_pb.GenerateRequest(prompt='busy', steps=60, seed=1))
	await next_of(call, 'progress')
	latencies = []
	for _ in range(20):
		start = time.perf_counter()
		await system.GetSystemInfo(sys_pb.GetSystemInfoRequest())
		await health.Check(health_pb2.HealthCheckRequest())
		latencies.append(time.perf_counter() - start)
	remaining = await collect(call)
	assert remaining[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	# A blocked loop would hold these calls for the rest of the job (seconds).
	assert max(latencies) < 0.5, latencies


async def test_health_goes_serving_once_the_default_model_is_ready(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(load_s=0.5), wait=False)
	assert await health_of(daemon) == NOT_SERVING
	assert await health_of(daemon, 'diffusiond.v1.GenerationService') == NOT_SERVING
	await asyncio.wait_for(daemon.ready.wait(), 10)
	assert await health_of(daemon) == SERVING
	assert await health_of(daemon, 'diffusiond.v1.GenerationService') == SERVING


async def test_health_watch_streams_the_transition_to_not_serving(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, _ = stubs(daemon)
	async with chan:
		watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest(service=''))
		first = await anext(aiter(watch))
		assert first.status == SERVING
		stopping = asyncio.create_task(daemon.shutdown(1.0))
		second = await asyncio.wait_for(anext(aiter(watch)), 10)
		assert second.status == NOT_SERVING
		watch.cancel()
		await stopping


async def test_graceful_shutdown_finishes_the_running_job(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.02))
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='a', steps=30))
		await next_of(running, 'started')
		queued = stub.Generate(gen_pb.GenerateRequest(prompt='b', steps=5))
		await next_of(queued, 'queued')
		stopping = asyncio.create_task(daemon.shutdown(5.0))
		await asyncio.sleep(0.05)
		health = health_pb2_grpc.HealthStub(chan)
		assert (await health.Check(health_pb2.HealthCheckRequest())).status == NOT_SERVING
		with pytest.raises(grpc.aio.AioRpcError) as refused:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='c', steps=1)))
		assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
		other = await rpc_error(model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest()))
		assert other.code() == grpc.StatusCode.UNAVAILABLE
		assert error_details(other)[0].reason == 'SHUTTING_DOWN'
		with pytest.raises(grpc.aio.AioRpcError) as dropped:
			await collect(queued)
		assert dropped.value.code() == grpc.StatusCode.CANCELLED
		assert error_details(dropped.value)[0].reason == 'CANCELLED_BY_SHUTDOWN'
		assert 'shut down before queued job' in str(dropped.value.details())
		rest = await collect(running)
		assert rest[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
		await stopping


async def test_shutdown_cancels_a_job_that_outlives_the_grace_period(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.05))
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(gen_pb.GenerateRequest(prompt='long', steps=150))
		await next_of(running, 'progress')
		stopping = asyncio.create_task(daemon.shutdown(0.2))
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(running)
		assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
		assert 'shut down before' in str(caught.value.details())
		await asyncio.wait_for(stopping, 10)


def test_daemon_process_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
	"""The real `diffusiond serve` entry point: builds the demo model, generates, exits 0 on SIGTERM."""
	port_file = tmp_path / 'port'
	env = {**os.environ, 'DIFFUSIOND_SERVER__GRACE_PERIOD_S': '5'}
	command = [sys.executable, '-m', 'diffusiond.server', 'serve', '--port', '0', '--data-dir', str(tmp_path)]
	process = subprocess.Popen([*command, '--port-file', str(port_file)], env=env, stderr=subprocess.PIPE, text=True)
	try:
		deadline = time.monotonic() + 120
		while not port_file.exists() and process.poll() is None and time.monotonic() < deadline:
			time.sleep(0.05)
		assert port_file.exists(), 'the daemon never wrote its port file'
		with grpc.insecure_channel(f'127.0.0.1:{port_file.read_text().strip()}') as chan:
			events = list(gen_grpc.GenerationServiceStub(chan).Generate(gen_pb.GenerateRequest(prompt='x', steps=2)))
			info = sys_grpc.SystemServiceStub(chan).GetSystemInfo(sys_pb.GetSystemInfoRequest())
		assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
		assert info.default_model == 'demo-tiny-random'
		assert info.loaded_models[0].demo
		process.send_signal(signal.SIGTERM)
		_, stderr = process.communicate(timeout=30)
		assert process.returncode == 0, stderr
		assert 'stopped' in stderr
	finally:
		if process.poll() is None:
			process.kill()
			process.communicate()


async def test_a_shutdown_step_that_fails_does_not_keep_the_server_running(
	start_fake: StartDaemon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
	daemon = await start_fake()
	stop = daemon.hasher.stop

	async def broken() -> None:
		await stop()  # stopped, then failing: the step's failure is what is tested, not a hasher task left behind
		raise RuntimeError('the hasher broke')

	monkeypatch.setattr(daemon.hasher, 'stop', broken)
	await daemon.shutdown(0.0)
	assert 'shutting down the hasher failed' in caplog.text
	with pytest.raises(ConnectionRefusedError):
		await asyncio.open_connection('127.0.0.1', daemon.port)
	lock = DataDirLock(daemon.settings.storage.data_dir)
	lock.acquire()  # the data folder is free for the next daemon (a held lock raises StartupError)
	lock.release()
