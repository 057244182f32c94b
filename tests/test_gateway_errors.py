"""The gateway's statuses over raw HTTP (fake engine: the queue and the errors, not the pixels): 401 without the token
(Bearer and A1111's basic auth both accepted), 422 with the field for wrong types, bad JSON and values intake refuses,
404, 429 with Retry-After when the queue is full, 503 while draining, 413 for a body over the cap; an HTTP job is seen,
watched and cancelled over gRPC, and interrupted over HTTP keeps its image."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest
import webuiapi

from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import StartDaemon, stubs
from tests.fakes import FakeEngine
from tests.gateway_fixtures import base_url, http_overrides
from tests.helpers import next_of

TOKEN = 'sekret-token'
SLOW = {'prompt': 'a slow one', 'steps': 100, 'width': 64, 'height': 64}


async def _running_jobs(daemon: Daemon, count: int) -> list[gen_pb.Job]:
	"""The jobs ListJobs shows once `count` of them are there (running, then queued)."""
	chan, gen = stubs(daemon)
	async with chan:
		for _ in range(400):
			jobs = list((await gen.ListJobs(gen_pb.ListJobsRequest())).jobs)
			if len(jobs) >= count and jobs[0].state == gen_pb.JOB_STATE_RUNNING and jobs[0].step >= 1:
				return jobs
			await asyncio.sleep(0.025)
	raise AssertionError(f'{count} jobs never showed in ListJobs')


@pytest.fixture
async def fake_web(start_fake: StartDaemon) -> Daemon:
	return await start_fake(FakeEngine(step_s=0.05), http_overrides({'limits': {'max_queue': 1}}))


async def test_the_token_guards_every_route_in_both_forms(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides=http_overrides({'security': {'token': TOKEN}}))
	basic = base64.b64encode(f'webui:{TOKEN}'.encode()).decode()
	async with httpx.AsyncClient(base_url=base_url(daemon)) as client:
		missing = await client.get('/sdapi/v1/sd-models')
		wrong = await client.get('/v1/models', headers={'Authorization': 'Bearer nope'})
		bearer = await client.get('/sdapi/v1/sd-models', headers={'Authorization': f'Bearer {TOKEN}'})
		basic_ok = await client.get('/v1/models', headers={'Authorization': f'Basic {basic}'})
		docs = await client.get('/docs')
	assert (missing.status_code, missing.json()['error']) == (401, 'TOKEN_MISSING')
	assert 'Bearer' in missing.headers['www-authenticate']
	assert (wrong.status_code, wrong.json()['error']['code']) == (401, 'TOKEN_INVALID')
	assert (bearer.status_code, basic_ok.status_code, docs.status_code) == (200, 200, 200)
	assert daemon.http is not None
	port = daemon.http.port
	api = await asyncio.to_thread(webuiapi.WebUIApi, host='127.0.0.1', port=port, username='webui', password=TOKEN)
	assert [model['model_name'] for model in await asyncio.to_thread(api.get_sd_models)] == ['fake-model']


@pytest.mark.parametrize(
	('body', 'field', 'words'),
	[
		({'steps': 'many'}, 'steps', 'integer'),
		({'steps': 0}, 'steps', 'between 1 and'),
		({'sampler_name': 'Turbo Magic'}, 'sampler_name', 'unknown sampler'),
		({'restore_faces': True}, 'restore_faces', 'not supported'),
		({'alwayson_scripts': {'ADetailer': {'args': [True]}}}, 'alwayson_scripts', 'not found'),
		({'width': 100}, 'width', 'multiple of 8'),
	],
)
async def test_bad_values_are_422_naming_the_field(
	start_fake: StartDaemon, body: dict[str, object], field: str, words: str
) -> None:
	daemon = await start_fake(overrides=http_overrides())
	async with httpx.AsyncClient(base_url=base_url(daemon)) as client:
		answer = await client.post('/sdapi/v1/txt2img', json={'prompt': 'p', **body})
	assert answer.status_code == 422
	errors = answer.json()['errors']
	assert errors[0]['field'] == field
	assert words in errors[0]['description']


async def test_malformed_bodies_unknown_models_and_huge_bodies(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides=http_overrides({'server': {'max_receive_bytes': 1024 * 1024}}))
	huge = b'{"prompt": "' + b'x' * (2 * 1024 * 1024) + b'"}'

	async def chunks() -> AsyncIterator[bytes]:
		for _ in range(3):
			yield b'x' * (512 * 1024)

	async with httpx.AsyncClient(base_url=base_url(daemon)) as client:
		not_json = await client.post(
			'/sdapi/v1/txt2img', content=b'{"prompt": ', headers={'content-type': 'application/json'}
		)
		unknown = await client.post(
			'/sdapi/v1/txt2img', json={'prompt': 'p', 'override_settings': {'sd_model_checkpoint': 'nope [0123456789]'}}
		)
		declared = await client.post('/sdapi/v1/txt2img', content=huge, headers={'content-type': 'application/json'})
		streamed = await client.post(
			'/sdapi/v1/png-info', content=chunks(), headers={'content-type': 'application/json'}
		)
		extra = await client.post('/sdapi/v1/txt2img', json={'prompt': 'p', 'steps': 2, 'no_such_field': 1})
	assert not_json.status_code == 422
	assert (unknown.status_code, unknown.json()['error']) == (404, 'MODEL_NOT_FOUND')
	assert (declared.status_code, declared.json()['error']) == (413, 'REQUEST_TOO_LARGE')
	assert streamed.status_code == 413
	assert extra.status_code == 200, 'unknown fields are ignored, as A1111 ignores them'


async def test_a_full_queue_is_429_with_retry_after_and_grpc_cancels_http_jobs(fake_web: Daemon) -> None:
	async with httpx.AsyncClient(base_url=base_url(fake_web), timeout=60) as client:
		first = asyncio.create_task(client.post('/sdapi/v1/txt2img', json=SLOW))
		await _running_jobs(fake_web, 1)
		second = asyncio.create_task(client.post('/sdapi/v1/txt2img', json=SLOW))
		jobs = await _running_jobs(fake_web, 2)
		full = await client.post('/sdapi/v1/txt2img', json=SLOW)
		chan, gen = stubs(fake_web)
		async with chan:
			await gen.CancelQueuedJobs(gen_pb.CancelQueuedJobsRequest())
			await gen.CancelJob(gen_pb.CancelJobRequest(job_id=jobs[0].job_id))
		answers = await asyncio.gather(first, second)
	assert (full.status_code, full.json()['error']) == (429, 'QUEUE_FULL')
	assert int(full.headers['retry-after']) >= 1
	assert [(answer.status_code, answer.json()['error']) for answer in answers] == [(409, 'JOB_CANCELLED')] * 2


async def test_draining_answers_503(fake_web: Daemon) -> None:
	fake_web.gate.closed = True
	try:
		async with httpx.AsyncClient(base_url=base_url(fake_web)) as client:
			answer = await client.get('/sdapi/v1/samplers')
	finally:
		fake_web.gate.closed = False
	assert (answer.status_code, answer.json()['error']) == (503, 'SHUTTING_DOWN')


async def test_an_http_job_is_watched_over_grpc_and_interrupted_over_http_keeping_its_image(fake_web: Daemon) -> None:
	assert fake_web.http is not None
	api = await asyncio.to_thread(webuiapi.WebUIApi, host='127.0.0.1', port=fake_web.http.port)
	made = asyncio.create_task(asyncio.to_thread(api.txt2img, prompt='a slow one', steps=100, width=64, height=64))
	job = (await _running_jobs(fake_web, 1))[0]
	chan, gen = stubs(fake_web)
	async with chan:
		watch = gen.WatchJob(gen_pb.WatchJobRequest(job_id=job.job_id))
		assert (await next_of(watch, 'started')).started.model == 'fake-model'
		progress = await asyncio.to_thread(api.get_progress)
		assert progress['state']['job'] == job.job_id
		assert 0 < progress['progress'] < 1
		await asyncio.to_thread(api.interrupt)
		result = await made
		completed = await next_of(watch, 'completed')
		record = await history_grpc.HistoryServiceStub(chan).GetGeneration(
			history_pb.GetGenerationRequest(id=job.job_id)
		)
	assert result.image.size == (64, 64)
	assert result.info['job_id'] == job.job_id
	assert completed.completed.state == gen_pb.JOB_STATE_CANCELLED
	assert record.generation.state == gen_pb.JOB_STATE_CANCELLED
	assert len(record.generation.images) == 1
