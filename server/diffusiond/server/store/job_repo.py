"""The jobs table: a job is added when accepted, marked running when it starts, and ended in the same
transaction as its history record where both change (store/history_repo.py calls `end_in`)."""

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import ACTIVE_STATES, JobEnd, StoredJob
from diffusiond.server.schemas import JobState
from diffusiond.server.store.tables import JobRow


def _stored(row: JobRow) -> StoredJob:
	info = JobInfo.model_validate_json(row.info)
	state = JobState(row.state)
	return StoredJob(
		id=row.id,
		node=row.node,
		state=state,
		priority=row.priority,
		keep_running=row.keep_running,
		params=row.params,
		info=info.model_copy(
			update={
				'state': state,
				'position': 0,
				'step': 0,
				'end_reason': row.reason,
				'error': row.error,
				'finished_at': row.finished_at,
				'attempts': row.attempts,
			}
		),
		attempts=row.attempts,
		created_at=row.created_at,
		deadline_at=row.deadline_at,
		finished_at=row.finished_at,
		reason=row.reason,
		error=row.error,
	)


async def end_in(session: AsyncSession, job_id: str, end: JobEnd) -> None:
	"""Ends the job `job_id` inside `session`'s transaction (no row: a job the store never had, e.g. no journal)."""
	values = {'state': end.state.value, 'reason': end.reason, 'error': end.error, 'finished_at': end.at}
	await session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


class JobRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	async def add(self, job: StoredJob, seq: int) -> None:
		row = JobRow(
			id=job.id,
			node=job.node,
			state=job.state.value,
			priority=job.priority,
			keep_running=job.keep_running,
			seq=seq,
			params=job.params,
			info=job.info.model_dump_json(),
			attempts=0,
			created_at=job.created_at,
			deadline_at=job.deadline_at,
			reason='',
			error='',
		)
		async with self._sessions.begin() as session:
			session.add(row)

	async def remove(self, job_id: str) -> None:
		"""A job refused after it was written (the queue filled meanwhile): as if never accepted."""
		async with self._sessions.begin() as session:
			await session.execute(delete(JobRow).where(JobRow.id == job_id))

	async def running(self, job_ids: list[str]) -> list[str]:
		"""Claims the queued jobs `job_ids` for the device: each start counts (a job that dies twice is not run
		again). On PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED, so a row another transaction holds
		is skipped, never waited for; returns the ids claimed."""
		claim = (
			select(JobRow)
			.where(JobRow.id.in_(job_ids), JobRow.state == JobState.QUEUED.value)
			.with_for_update(skip_locked=True)
		)
		async with self._sessions.begin() as session:
			rows = list(await session.scalars(claim))
			now = datetime.now(UTC)
			for row in rows:
				row.state, row.attempts, row.started_at = JobState.RUNNING.value, row.attempts + 1, now
			return [row.id for row in rows]

	async def requeue(self, job_id: str) -> None:
		"""A job taken back at start-up waits again (its attempts stay counted)."""
		async with self._sessions.begin() as session:
			await session.execute(update(JobRow).where(JobRow.id == job_id).values(state=JobState.QUEUED.value))

	async def end(self, job_id: str, end: JobEnd) -> None:
		async with self._sessions.begin() as session:
			await end_in(session, job_id, end)

	async def unfinished(self, node: str) -> list[StoredJob]:
		"""The node's queued and running jobs, in acceptance order."""
		query = (
			select(JobRow)
			.where(JobRow.node == node, JobRow.state.in_([state.value for state in ACTIVE_STATES]))
			.order_by(JobRow.seq, JobRow.id)
		)
		async with self._sessions() as session:
			return [_stored(row) for row in await session.scalars(query)]

	async def finished(self, states: list[JobState], limit: int) -> list[StoredJob]:
		"""Finished jobs, the most recent first (`states` empty = every final state)."""
		wanted = [state.value for state in states] or [state.value for state in JobState if state not in ACTIVE_STATES]
		query = (
			select(JobRow).where(JobRow.state.in_(wanted)).order_by(JobRow.finished_at.desc(), JobRow.id).limit(limit)
		)
		async with self._sessions() as session:
			return [_stored(row) for row in await session.scalars(query)]

	async def get(self, job_id: str) -> StoredJob | None:
		async with self._sessions() as session:
			row = await session.get(JobRow, job_id)
			return _stored(row) if row is not None else None
