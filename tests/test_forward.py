"""A job for a model only another daemon of the shared queue has: the daemon that lacks it accepts it, the one that
has it runs it, and the caller's stream is a local job's (queued, started, progress, images, completed). Cancelling it
while it waits reaches it; a model only stopped daemons have is FAILED_PRECONDITION (MODEL_NOT_SERVED), one nobody
has stays NOT_FOUND. PostgreSQL, two daemons in this process with the fake engine."""

import asyncio
from pathlib import Path

import grpc

from diffusiond.server.app import Daemon
from diffusiond.server.schemas import JobState
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.checkpoints import fake_lora
from tests.conftest import write_fake_model
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, kinds, next_of, until_error
from tests.nodes import start_node

ONLY_B = 'only-on-b'


async def _published(daemon: Daemon, node: str, model: str) -> None:
	"""Until the nodes table says `node` can run `model` (its heartbeat after its scan)."""
	async with asyncio.timeout(30):
		while not any(found.id == node and model in found.status.models for found in await daemon.nodes.all()):  # noqa: ASYNC110
			await asyncio.sleep(0.02)  # another daemon's heartbeat: no event here to wait on


async def test_a_job_for_a_model_only_another_daemon_has_runs_there(tmp_path: Path, postgres_url: str) -> None:
	write_fake_model(tmp_path / 'node-b' / 'models' / ONLY_B)
	engine_a = FakeEngine(step_s=0.001)
	a = await start_node(tmp_path, 'node-a', postgres_url, engine_a)
	b = await start_node(tmp_path, 'node-b', postgres_url, FakeEngine(step_s=0.02))
	try:
		await _published(a, 'node-b', ONLY_B)
		async with grpc.aio.insecure_channel(f'127.0.0.1:{a.port}') as chan_a:
			stub_a: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_a)
			request = gen_pb.GenerateRequest(model=ONLY_B, prompt='over there', steps=3, seed=7, num_images=2)
			events = await collect(stub_a.Generate(request))
			job_id = events[0].job_id
			history: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(chan_a)
			record = (await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation
			image = await history.GetImage(history_pb.GetImageRequest(generation_id=job_id, index=1))
			listed = await stub_a.ListJobs(gen_pb.ListJobsRequest(include_finished=True))
	finally:
		await b.shutdown(0.0)
		await a.shutdown(0.0)
	start = kinds(events).index('started')
	assert start >= 1
	assert set(kinds(events)[:start]) == {'queued'}, 'its place here, then on the node that claimed it'
	assert kinds(events)[-3:] == ['image', 'image', 'completed']
	assert events[start].started.model == ONLY_B
	assert [event.image.seed for event in events if event.HasField('image')] == [7, 8]
	assert events[-1].completed.storage == gen_pb.STORAGE_STATE_STORED
	assert (record.node, record.model_name) == ('node-b', ONLY_B), 'run and recorded by the node that has the model'
	images = [event.image for event in events if event.HasField('image')]
	assert image.data == images[1].data, "node-a gives node-b's image"
	assert [(job.state, job.node) for job in listed.jobs if job.job_id == job_id] == [
		(gen_pb.JOB_STATE_SUCCEEDED, 'node-b')
	]
	assert not engine_a.runs, 'node-a never ran it'


async def test_a_waiting_forwarded_job_is_cancelled_by_its_caller(tmp_path: Path, postgres_url: str) -> None:
	write_fake_model(tmp_path / 'node-b' / 'models' / ONLY_B)
	a = await start_node(tmp_path, 'node-a', postgres_url, FakeEngine(step_s=0.001))
	b = await start_node(tmp_path, 'node-b', postgres_url, FakeEngine(step_s=0.02, endless=('keeps b busy',)))
	try:
		await _published(a, 'node-b', ONLY_B)
		async with (
			grpc.aio.insecure_channel(f'127.0.0.1:{a.port}') as chan_a,
			grpc.aio.insecure_channel(f'127.0.0.1:{b.port}') as chan_b,
		):
			stub_a: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_a)
			stub_b: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_b)
			busy = stub_b.Generate(gen_pb.GenerateRequest(prompt='keeps b busy', steps=150))
			busy_id = (await next_of(busy, 'started')).job_id
			waiting = stub_a.Generate(gen_pb.GenerateRequest(model=ONLY_B, prompt='waits', steps=2))
			job_id = (await next_of(waiting, 'queued')).job_id
			await stub_a.CancelJob(gen_pb.CancelJobRequest(job_id=job_id))
			_, ended = await until_error(waiting)
			left = stub_a.Generate(gen_pb.GenerateRequest(model=ONLY_B, prompt='caller leaves', steps=2))
			left_id = (await next_of(left, 'queued')).job_id
			left.cancel()  # the caller goes away while it waits
			async with asyncio.timeout(30):
				while (stored := await a.jobs.get(left_id)) is None or stored.state is JobState.QUEUED:  # noqa: ASYNC110
					await asyncio.sleep(0.02)  # the store's row: no event here to wait on
			await stub_b.CancelJob(gen_pb.CancelJobRequest(job_id=busy_id))
	finally:
		await b.shutdown(0.0)
		await a.shutdown(0.0)
	assert ended.code() == grpc.StatusCode.CANCELLED
	assert stored.state is JobState.CANCELLED, 'dropped from the shared queue once its caller left'


async def test_a_model_only_stopped_daemons_have_is_refused_up_front(tmp_path: Path, postgres_url: str) -> None:
	write_fake_model(tmp_path / 'node-b' / 'models' / ONLY_B)
	a = await start_node(tmp_path, 'node-a', postgres_url, FakeEngine(step_s=0.001))
	b = await start_node(tmp_path, 'node-b', postgres_url, FakeEngine(step_s=0.001))
	try:
		await _published(a, 'node-b', ONLY_B)
		await b.shutdown(0.0)
		async with grpc.aio.insecure_channel(f'127.0.0.1:{a.port}') as chan_a:
			stub_a: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_a)
			_, stopped = await until_error(stub_a.Generate(gen_pb.GenerateRequest(model=ONLY_B, prompt='x', steps=2)))
			_, nowhere = await until_error(stub_a.Generate(gen_pb.GenerateRequest(model='nowhere', prompt='x')))
			listed = await stub_a.ListJobs(gen_pb.ListJobsRequest(include_finished=True))
	finally:
		await a.shutdown(0.0)
	assert stopped.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert error_details(stopped)[0].reason == 'MODEL_NOT_SERVED'
	assert "model 'only-on-b' is not on this daemon, and the nodes that have it (node-b)" in str(stopped.details())
	assert nowhere.code() == grpc.StatusCode.NOT_FOUND
	assert error_details(nowhere)[0].reason == 'MODEL_NOT_FOUND'
	assert not listed.jobs, 'nothing was queued'


async def test_a_forwarded_request_wrong_for_its_model_ends_with_that_error(tmp_path: Path, postgres_url: str) -> None:
	write_fake_model(tmp_path / 'node-b' / 'models' / ONLY_B)
	fake_lora(tmp_path / 'node-b' / 'loras' / 'xl-style.safetensors', 'sdxl')  # not for the tiny model
	a = await start_node(tmp_path, 'node-a', postgres_url, FakeEngine(step_s=0.001))
	b = await start_node(tmp_path, 'node-b', postgres_url, FakeEngine(step_s=0.001))
	try:
		await _published(a, 'node-b', ONLY_B)
		async with grpc.aio.insecure_channel(f'127.0.0.1:{a.port}') as chan_a:
			stub_a: gen_grpc.GenerationServiceAsyncStub = gen_grpc.GenerationServiceStub(chan_a)
			lora = gen_pb.LoraRef(lora='xl-style', weight=0.5)
			request = gen_pb.GenerateRequest(model=ONLY_B, prompt='wrong lora', steps=2, loras=[lora])
			events, error = await until_error(stub_a.Generate(request))
			stored = await a.jobs.get(events[0].job_id)
	finally:
		await b.shutdown(0.0)
		await a.shutdown(0.0)
	assert kinds(events) == ['queued']
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert error_details(error)[0].reason == 'LORA_INCOMPATIBLE', 'the reason node-b found'
	assert 'made for SDXL' in str(error.details())
	assert stored is not None
	assert (stored.state, stored.reason) == (JobState.FAILED, 'LORA_INCOMPATIBLE')
