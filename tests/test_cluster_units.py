"""The shared queue's parts without daemons: which queued job a node claims first, errors relayed by reason,
events relayed as JSON (images included), and on SQLite and PostgreSQL the claims, the takeover of a lapsed node
and the fencing that keeps a node whose job was taken over from ending it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from diffusiond.server.cluster.choice import claim_order
from diffusiond.server.cluster.messages import RelayedEvent, relayed, relayed_failure
from diffusiond.server.error_status import status_code_for
from diffusiond.server.errors import DiffusiondError, JobTakenOverError, QueueFullError, from_reason
from diffusiond.server.events import ImageEvent, JobInfo
from diffusiond.server.job_records import JobEnd, StoredJob, job_end
from diffusiond.server.node_records import NodeStatus
from diffusiond.server.schemas import JobState, LoraSpec
from diffusiond.server.store.database import Database, default_url
from diffusiond.server.store.job_repo import JobRepository
from diffusiond.server.store.node_repo import NodeRepository
from diffusiond.server.store.takeover import take_over
from tests.stores import POSTGRESQL, SQLITE, fresh_database

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _lora(name: str) -> LoraSpec:
	return LoraSpec(id=name, name=name, path=Path(name), weight=1.0, short_hash='', key=f'{name}-key')


def _stored(
	job_id: str, model: str = 'm', priority: bool = False, age_s: float = 0.0, loras: tuple[str, ...] = ()
) -> StoredJob:
	created = NOW - timedelta(seconds=age_s)
	info = JobInfo(
		job_id=job_id,
		state=JobState.QUEUED,
		position=0,
		model=model,
		prompt='p',
		width=64,
		height=64,
		steps=2,
		num_images=1,
		step=0,
		total_steps=2,
		created_at=created,
		loras=[_lora(name) for name in loras],
	)
	return StoredJob(
		id=job_id,
		node='origin',
		state=JobState.QUEUED,
		priority=priority,
		keep_running=False,
		params='{}',
		info=info,
		attempts=0,
		created_at=created,
		model=model,
	)


def test_a_node_claims_priority_then_overdue_then_its_loaded_model() -> None:
	queued = [
		_stored('urgent-cold', 'cold', priority=True, age_s=1),
		_stored('old-cold', 'cold', age_s=60),
		_stored('new-cold', 'cold', age_s=1),
		_stored('new-warm', 'warm', age_s=1),
	]
	order = [job.id for job in claim_order(queued, {'warm': set()}, NOW, prefer_loaded_s=10)]
	assert order == ['urgent-cold', 'old-cold', 'new-warm', 'new-cold']
	unloaded = [job.id for job in claim_order(queued, {}, NOW, prefer_loaded_s=10)]
	assert unloaded == ['urgent-cold', 'old-cold', 'new-cold', 'new-warm'], 'acceptance order when nothing is loaded'


def test_among_jobs_for_its_loaded_model_a_node_claims_those_whose_loras_it_has_attached_first() -> None:
	queued = [
		_stored('other-lora', 'warm', age_s=3, loras=('ink',)),
		_stored('two-attached', 'warm', age_s=2, loras=('detail', 'film')),
		_stored('no-lora', 'warm', age_s=1),
		_stored('cold', 'cold', age_s=1, loras=('detail',)),
	]
	warm = {'warm': {'detail', 'film'}}
	order = [job.id for job in claim_order(queued, warm, NOW, prefer_loaded_s=10)]
	assert order == ['two-attached', 'no-lora', 'other-lora', 'cold']


def test_an_error_relayed_by_reason_keeps_its_class_and_status() -> None:
	error = from_reason('QUEUE_FULL', 'the queue is full')
	assert isinstance(error, QueueFullError)
	assert (error.message, status_code_for(error).name) == ('the queue is full', 'RESOURCE_EXHAUSTED')
	unknown = from_reason('FROM_A_NEWER_BUILD', 'what it said')
	assert type(unknown) is DiffusiondError
	assert unknown.message == 'what it said'
	taken = from_reason(JobTakenOverError.reason, 'x')
	assert status_code_for(taken).name == 'ABORTED'


def test_relayed_events_carry_images_and_failures_as_json() -> None:
	image = ImageEvent(index=0, seed=7, data=bytes(range(256)), mime_type='image/png', width=1, height=1)
	back = RelayedEvent.model_validate_json(relayed(image, 'node-b').model_dump_json())
	assert back.event() == image
	assert back.runner == 'node-b'
	assert back.error() is None
	failed = RelayedEvent.model_validate_json(relayed_failure(JobTakenOverError('gone'), 'node-b').model_dump_json())
	assert isinstance(failed.error(), JobTakenOverError)
	assert failed.event() is None


@pytest.fixture(params=[SQLITE, POSTGRESQL])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
	if request.param == SQLITE:
		url = default_url(tmp_path)
		instance = Database(url)
		await instance.upgrade()
		yield instance
		await instance.close()
		return
	server: str = request.getfixturevalue('postgres_server')
	async for url in fresh_database(server):
		instance = Database(url)
		await instance.upgrade()
		yield instance
		await instance.close()


async def test_a_lapsed_node_is_taken_over_and_its_late_end_is_refused(database: Database) -> None:
	jobs, nodes = JobRepository(database.sessions), NodeRepository(database.sessions)
	epoch = await nodes.join('node-x', 'x:1', 'cpu')
	await jobs.add(_stored('job-1'), 1)
	first = (await jobs.running(['job-1'], 'node-x', epoch)).claims['job-1']
	not_yet = await take_over(database.sessions, 'node-x', NOW - timedelta(days=1))
	report = await take_over(database.sessions, 'node-x', datetime.now(UTC) + timedelta(seconds=1))
	again = await take_over(database.sessions, 'node-x', datetime.now(UTC) + timedelta(seconds=1))
	second = await jobs.claim('job-1', 'node-y', 1)
	with pytest.raises(JobTakenOverError, match='taken over by another daemon'):
		await jobs.end('job-1', job_end(JobState.SUCCEEDED, None, first))
	late = await jobs.get('job-1')
	beat = await nodes.beat('node-x', epoch, NodeStatus(queue_depth=0, busy=False, loaded=[]))
	lost = await nodes.lost('node-x')
	rejoined = await nodes.join('node-x', 'x:1', 'cpu')
	await jobs.end('job-1', job_end(JobState.SUCCEEDED, None, second))
	ended = await jobs.get('job-1')
	assert not_yet is None, 'a current lease is not taken over'
	assert report is not None
	assert (report.requeued, report.ended) == (['job-1'], {})
	assert again is None, 'a node is taken over once'
	assert second is not None
	assert (first.attempt, second.attempt, second.runner) == (1, 2, 'node-y')
	assert late is not None
	assert (late.state, late.runner) == (JobState.RUNNING, 'node-y'), 'the late end changed nothing'
	assert (beat, lost, rejoined) == (False, True, 2), 'its heartbeat is refused; it joins again, a new epoch'
	assert ended is not None
	assert (ended.state, ended.attempts) == (JobState.SUCCEEDED, 2)


async def test_a_job_interrupted_twice_is_not_run_a_third_time_on_takeover(database: Database) -> None:
	jobs, nodes = JobRepository(database.sessions), NodeRepository(database.sessions)
	for attempt in (1, 2):
		epoch = await nodes.join('node-x', 'x:1', 'cpu')
		if attempt == 1:
			await jobs.add(_stored('job-2'), 1)
		await jobs.running(['job-2'], 'node-x', epoch)
		report = await take_over(database.sessions, 'node-x', datetime.now(UTC) + timedelta(seconds=1))
		assert report is not None
	stored = await jobs.get('job-2')
	assert report is not None
	assert report.ended == {'job-2': JobState.FAILED.value}
	assert stored is not None
	assert (stored.state, stored.reason, stored.attempts) == (JobState.FAILED, 'INTERRUPTED_TWICE', 2)


async def test_a_queued_job_is_dropped_only_while_nobody_claimed_it(database: Database) -> None:
	jobs = JobRepository(database.sessions)
	await jobs.add(_stored('job-3'), 1)
	await jobs.add(_stored('job-4'), 2)
	await jobs.claim('job-3', 'node-y', 1)
	cancelled = JobEnd(state=JobState.CANCELLED, reason='JOB_CANCELLED', at=datetime.now(UTC))
	assert not await jobs.drop('job-3', cancelled), 'claimed meanwhile: its runner is told instead'
	assert await jobs.drop('job-4', cancelled)
	queued = await jobs.queued(10)
	active = await jobs.active(10)
	assert queued == []
	assert [(job.id, job.state, job.runner) for job in active] == [('job-3', JobState.RUNNING, 'node-y')]
