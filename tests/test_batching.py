"""Dynamic batching: compatible queued jobs share one pipeline call, each keeping its own stream and seeds."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.errors import DeadlineTooShortError
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.estimate import Estimator, check_deadline
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.jobs.validation import resolve
from diffusiond.server.schemas import GenerateParams, JobState
from diffusiond.server.settings import LimitsSettings
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import TINY_MODEL, Overrides, StartDaemon, StartReal, stubs
from tests.fakes import FakeEngine
from tests.helpers import collect, next_of, pixels, until_error

BATCHING: Overrides = {'device': {'batch_max_images': 4}}


def _request(prompt: str, **fields: int) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(prompt=prompt, steps=3, width=64, height=64, sampler=gen_pb.SAMPLER_EULER)
	for field, value in fields.items():
		setattr(request, field, value)
	return request


async def _run_behind(
	start_fake: StartDaemon, requests: list[gen_pb.GenerateRequest], overrides: Overrides | None = BATCHING
) -> tuple[FakeEngine, list[list[gen_pb.GenerateEvent]]]:
	"""Queues `requests` one at a time (so in this order) behind a running job; the calls made and every stream."""
	backend = FakeEngine(step_s=0.02)
	daemon = await start_fake(backend, overrides)
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(_request('running', steps=50))
		await next_of(running, 'started')
		calls = []
		for request in requests:
			calls.append(stub.Generate(request))
			await next_of(calls[-1], 'queued')
		ended = await asyncio.gather(collect(running), *(collect(call) for call in calls))
	return backend, ended[1:]


async def test_compatible_jobs_share_one_call_up_to_the_image_limit(start_fake: StartDaemon) -> None:
	requests = [
		_request('a', seed=10, num_images=2),
		_request('other size', width=128),
		_request('b', seed=20),
		_request('c', seed=30, steps=4),  # other steps: runs alone
		_request('d', seed=40, num_images=2),  # would make 5 images: the next call
	]
	backend, ended = await _run_behind(start_fake, requests)
	assert backend.batches == [['running'], ['a', 'b'], ['other size'], ['c'], ['d']]
	by_prompt = dict(zip(['a', 'other size', 'b', 'c', 'd'], ended, strict=True))
	for prompt, seeds in (('a', [10, 11]), ('b', [20]), ('d', [40, 41])):
		events = by_prompt[prompt]
		assert [event.image.seed for event in events if event.HasField('image')] == seeds
		assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
		assert len({event.job_id for event in events}) == 1


async def test_batching_is_off_by_default(start_fake: StartDaemon) -> None:
	backend, _ = await _run_behind(start_fake, [_request('a'), _request('b')], overrides=None)
	assert backend.batches == [['running'], ['a'], ['b']]


async def test_cancelling_one_job_of_a_batch_leaves_the_others(start_fake: StartDaemon) -> None:
	backend = FakeEngine(step_s=0.05)
	daemon = await start_fake(backend, BATCHING)
	chan, stub = stubs(daemon)
	async with chan:
		running = stub.Generate(_request('running', steps=12))
		await next_of(running, 'started')
		kept = stub.Generate(_request('kept', steps=20))
		await next_of(kept, 'queued')
		dropped = stub.Generate(_request('dropped', steps=20))
		dropped_id = (await next_of(dropped, 'queued')).job_id
		await next_of(dropped, 'progress')
		listed = await stub.ListJobs(gen_pb.ListJobsRequest())
		await stub.CancelJob(gen_pb.CancelJobRequest(job_id=dropped_id))
		_, error = await until_error(dropped)
		steps_when_cancelled = len(backend.completed_steps)
		history = history_grpc.HistoryServiceStub(chan)
		# From the moment its caller sees CANCELLED, the dropped job has no record (its batch still runs).
		during = (await history.ListGenerations(history_pb.ListGenerationsRequest())).generations
		done = await collect(kept)
		await collect(running)
		records = (await history.ListGenerations(history_pb.ListGenerationsRequest())).generations
	assert backend.batches[-1] == ['kept', 'dropped']
	assert [(job.prompt, job.position) for job in listed.jobs] == [('kept', 0), ('dropped', 0)]
	assert error.code() == grpc.StatusCode.CANCELLED
	assert steps_when_cancelled < 12 + 20, 'the cancelled job ends at once, not with the batch'
	assert done[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert 'dropped' not in [record.prompt for record in during]
	assert sorted(record.prompt for record in records) == ['kept', 'running']


async def test_batched_images_match_the_unbatched_ones(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	"""Each image keeps its own generator: same starting noise; the batched UNet/VAE math may differ in the last
	bits of float32 on CPU, so pixels are compared with a tolerance and the exact share is reported."""
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	daemon = await start_real(BATCHING)
	chan, stub = stubs(daemon)
	requests = [_request('a red fox', seed=1), _request('a blue bird', seed=2, num_images=2), _request('a cat', seed=9)]
	requests[2].negative_prompt = 'blurry'
	requests[1].preview_every = 1  # previews of the job's own first image in the batch
	async with chan:
		blocker = stub.Generate(_request('blocker', steps=40))
		await next_of(blocker, 'started')
		calls = []
		for request in requests:
			calls.append(stub.Generate(request))
			await next_of(calls[-1], 'queued')
		await collect(blocker)
		await next_of(calls[0], 'progress')
		listed = await stub.ListJobs(gen_pb.ListJobsRequest())
		batched = await asyncio.gather(*(collect(call) for call in calls))
		alone = [await collect(stub.Generate(request)) for request in requests]
	assert [(job.state, job.position) for job in listed.jobs] == [(gen_pb.JOB_STATE_RUNNING, 0)] * 3, 'one call'
	previews = [event.preview for event in batched[1] if event.HasField('preview')]
	assert [preview.step for preview in previews][-1] == 3
	assert not any(event.HasField('preview') for event in batched[0])
	for together, single in zip(batched, alone, strict=True):
		images = [pixels(event.image.data) for event in together if event.HasField('image')]
		expected = [pixels(event.image.data) for event in single if event.HasField('image')]
		assert len(images) == len(expected) > 0
		for image, reference in zip(images, expected, strict=True):
			assert np.abs(image.astype(int) - reference.astype(int)).max() <= 2


async def test_a_priority_job_is_never_jumped_by_a_batch_partner(start_fake: StartDaemon) -> None:
	requests = [
		_request('urgent 64', priority=True),
		_request('urgent 128', width=128, priority=True),
		_request('later 64'),  # fits urgent 64's batch, but would jump urgent 128
	]
	backend, _ = await _run_behind(start_fake, requests)
	assert backend.batches == [['running'], ['urgent 64'], ['urgent 128'], ['later 64']]


async def test_a_running_batch_counts_once_in_a_deadline_estimate() -> None:
	model = ModelInfo(id='m', name='m', path=Path('m'), native_size=64)
	spec = resolve(GenerateParams(prompt='x', steps=10, width=64, height=64), model, LimitsSettings())
	estimator = Estimator()
	estimator.observe([spec, spec], 2.0)  # a batch of two: one second per job of this size
	loop = asyncio.get_running_loop()
	batch = [Job(spec, model, EventChannel(loop)) for _ in range(3)]
	for job in batch:
		job.state = JobState.RUNNING
	queued = Job(spec, model, EventChannel(loop))
	new = Job(spec, model, EventChannel(loop))
	check_deadline(estimator, new, batch, 2.1)  # the batch (1 s, not 3 s) and the new job (1 s)
	with pytest.raises(DeadlineTooShortError) as caught:
		check_deadline(estimator, new, [*batch, queued], 2.1)
	assert caught.value.metadata['estimated_s'] == '3.00'


async def test_a_job_being_accepted_counts_as_this_nodes_own_until_it_is_queued() -> None:
	"""A claimer (cluster/stealer.py) skips this node's jobs: also the one whose row is being written, before it
	is put into the queue (it once took it for another node's job and ran a second copy)."""
	model = ModelInfo(id='m', name='m', path=Path('m'), native_size=64)
	spec = resolve(GenerateParams(prompt='x', steps=10, width=64, height=64), model, LimitsSettings())
	queue = JobQueue(4, Estimator())
	job, refused = Job(spec, model, EventChannel(asyncio.get_running_loop())), 'refused-id'
	queue.reserve(job.id)
	queue.reserve(refused)
	assert queue.queued_ids() == {job.id, refused}
	queue.put(job)
	queue.release(refused)
	assert queue.queued_ids() == {job.id}
	assert queue.depth == 1
