"""Limits and flow: stalled and slow readers, deadlines, request size, keepalive, long-lived streams."""

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, kinds, next_of, until_error
from tests.stall_proxy import StallingProxy

# Fixed HTTP/2 windows (no BDP growth): what a stalled reader holds up is bounded and predictable.
_NO_BDP = [('grpc.http2.bdp_probe', 0), ('grpc.max_receive_message_length', 64 * 1024 * 1024)]


async def test_a_stalled_reader_is_cut_and_never_stalls_the_device(start_fake: StartDaemon) -> None:
	backend = FakeEngine(step_s=0.005, noise=True)
	daemon = await start_fake(backend, {'server': {'stalled_reader_timeout_s': 0.5}})
	chan, stub = stubs(daemon)
	async with chan, StallingProxy(daemon.port) as proxy:
		slow_chan = grpc.aio.insecure_channel(f'127.0.0.1:{proxy.port}', options=_NO_BDP)
		async with slow_chan:
			# Four 1024x1024 noise PNGs (~12 MiB) cannot all fit in the socket buffers of a reader that stopped.
			request = gen_pb.GenerateRequest(prompt='big', steps=5, width=1024, height=1024, num_images=4, seed=1)
			call = gen_grpc.GenerationServiceStub(slow_chan).Generate(request)
			await next_of(call, 'queued')
			proxy.stall()
			begin = time.monotonic()
			after = await collect(stub.Generate(gen_pb.GenerateRequest(prompt='next', steps=3)))
			assert after[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED  # the device went on
			history = history_grpc.HistoryServiceStub(chan)
			for _ in range(100):
				listed = await history.ListGenerations(history_pb.ListGenerationsRequest(query='big'))
				if listed.generations:
					break
				await asyncio.sleep(0.05)
			assert len(listed.generations) == 1, 'the stalled job finished and was recorded'
			await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - begin)))
			proxy.resume()
			events, error = await until_error(call)
	assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
	assert error_details(error)[0].reason == 'READER_STALLED'
	assert kinds(events).count('image') < 4


async def test_a_slow_but_steady_reader_gets_every_image(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.002), {'server': {'stalled_reader_timeout_s': 2.0}})
	chan, stub = stubs(daemon)
	async with chan:
		call = stub.Generate(gen_pb.GenerateRequest(prompt='slow', steps=20, num_images=3))
		events = []
		async for event in call:
			events.append(event)
			await asyncio.sleep(0.02)  # reads slowly, but steadily
	names = kinds(events)
	assert names.count('image') == 3
	assert names[-1] == 'completed'
	assert max(event.progress.step for event in events if event.HasField('progress')) == 20


async def test_a_deadline_that_cannot_be_met_is_refused_up_front(start_fake: StartDaemon) -> None:
	backend = FakeEngine(step_s=0.02)
	daemon = await start_fake(backend)
	chan, stub = stubs(daemon)
	async with chan:
		first = await collect(stub.Generate(gen_pb.GenerateRequest(prompt='calibrate', steps=10), timeout=5))
		assert first[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED, 'no estimate yet: never refused'
		runs = len(backend.runs)
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='long', steps=100), timeout=0.5))
		assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
		info = error_details(caught.value)[0]
		assert info.reason == 'DEADLINE_TOO_SHORT'
		assert 1.0 < float(info.metadata['estimated_s']) < 5.0
		assert len(backend.runs) == runs, 'the refused job never ran'
		running = stub.Generate(gen_pb.GenerateRequest(prompt='ahead', steps=100))
		await next_of(running, 'started')
		with pytest.raises(grpc.aio.AioRpcError) as queued:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='short', steps=5), timeout=1.0))
		assert error_details(queued.value)[0].metadata['jobs_ahead'] == '1'
		running.cancel()


async def test_a_deadline_passing_mid_job_frees_the_device_within_a_step(start_fake: StartDaemon) -> None:
	backend = FakeEngine(step_s=0.01)
	daemon = await start_fake(backend)
	chan, stub = stubs(daemon)
	async with chan:
		await collect(stub.Generate(gen_pb.GenerateRequest(prompt='calibrate', steps=10)))
		backend.step_s = 0.1  # slower than learned: the estimate admits it, the deadline then passes mid-job
		before = len(backend.completed_steps)
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='late', steps=40), timeout=1.0))
		assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
		expired = time.monotonic()
		for _ in range(100):
			if not (await stub.ListJobs(gen_pb.ListJobsRequest())).jobs:
				break
			await asyncio.sleep(0.01)
		assert time.monotonic() - expired < 0.25, 'the device was freed within about one step'
		assert 5 <= len(backend.completed_steps) - before < 40


async def test_an_oversized_request_is_refused_and_the_daemon_goes_on(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides={'server': {'max_receive_bytes': 1024 * 1024}})
	chan, stub = stubs(daemon)
	async with chan:
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await collect(stub.Generate(gen_pb.GenerateRequest(prompt='x' * (2 * 1024 * 1024))))
		assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
		events = await collect(stub.Generate(gen_pb.GenerateRequest(prompt='fine', steps=2)))
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED


async def test_a_stream_silent_during_a_long_load_survives_keepalive(start_fake: StartDaemon) -> None:
	server: dict[str, object] = {'keepalive_time_s': 0.2, 'keepalive_timeout_s': 1.0, 'min_client_ping_s': 0.2}
	backend = FakeEngine()
	daemon = await start_fake(backend, {'server': server})
	backend.load_s = 1.5  # the next job's load is long and sends nothing
	options = [('grpc.keepalive_time_ms', 250), ('grpc.keepalive_timeout_ms', 1000)]
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}', options=options) as chan:
		call = gen_grpc.GenerationServiceStub(chan).Generate(gen_pb.GenerateRequest(prompt='slow load', steps=2))
		events = await collect(call)
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert events[-1].completed.timings.load_seconds >= 1.4


async def test_long_lived_streams_do_not_count_against_the_job_limit(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.01), {'limits': {'max_queue': 2}})
	chan, stub = stubs(daemon)
	async with chan:
		health = health_pb2_grpc.HealthStub(chan)
		watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(50)]
		for watch in watches:
			await watch.read()
		results = await asyncio.gather(
			*(collect(stub.Generate(gen_pb.GenerateRequest(prompt=f'job {i}', steps=5))) for i in range(3))
		)
		assert all(events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED for events in results)
		for watch in watches:
			watch.cancel()
