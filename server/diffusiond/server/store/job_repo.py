"""The jobs table: a job is added when accepted, marked running when it starts, and ended in the same
transaction as its history record where both change (store/history_repo.py calls `end_in`)."""

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.errors import JobTakenOverError
from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import ACTIVE_STATES, Claim, Claimed, Control, JobEnd, StoredJob
from diffusiond.server.schemas import JobState
from diffusiond.server.store.notify import send
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
				'node': row.runner,
			}
		),
		attempts=row.attempts,
		created_at=row.created_at,
		deadline_at=row.deadline_at,
		finished_at=row.finished_at,
		reason=row.reason,
		error=row.error,
		model=row.model,
		runner=row.runner,
		forwarded=row.forwarded,
	)


def _run_by(claim: Claim) -> ColumnElement[bool]:
	return and_(
		JobRow.runner == claim.runner,
		JobRow.runner_epoch == claim.epoch,
		JobRow.attempts == claim.attempt,
		JobRow.state == JobState.RUNNING.value,
	)


async def end_in(session: AsyncSession, job_id: str, end: JobEnd) -> None:
	"""Ends the job `job_id` inside `session`'s transaction (no row: a job the store never had, e.g. no journal).
	A run's end (`end.claim`) is written only while the row is still that run's: JOB_TAKEN_OVER otherwise, and the
	transaction (with its history record) is not committed."""
	values = {'state': end.state.value, 'reason': end.reason, 'error': end.error, 'finished_at': end.at}
	if end.claim is None:
		await session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
		return
	query = update(JobRow).where(JobRow.id == job_id, _run_by(end.claim)).values(**values).returning(JobRow.id)
	if (await session.execute(query)).scalar_one_or_none() is None:
		raise JobTakenOverError(
			f'job {job_id} was taken over by another daemon while {end.claim.runner} was cut off from the database; '
			f'WatchJob {job_id} follows its new run'
		)


class JobRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession], shared: bool = False) -> None:
		self._sessions = sessions
		self.shared = shared  # several daemons share this queue (PostgreSQL): changes are announced (NOTIFY)

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
			model=job.model,
			runner='',
			runner_epoch=0,
			forwarded=job.forwarded,
		)
		async with self._sessions.begin() as session:
			session.add(row)
			if self.shared:
				await send(session, Control(kind='queued', job_id=job.id))

	async def remove(self, job_id: str) -> None:
		"""A job refused after it was written (the queue filled meanwhile): as if never accepted."""
		async with self._sessions.begin() as session:
			await session.execute(delete(JobRow).where(JobRow.id == job_id))

	async def running(self, job_ids: list[str], runner: str, epoch: int) -> Claimed:
		"""Claims the queued jobs `job_ids` for this node's device: each start counts (a job that dies twice is not
		run again). A row another node is claiming is waited for (its claim is short), then found taken."""
		claim = select(JobRow).where(JobRow.id.in_(job_ids), JobRow.state == JobState.QUEUED.value).with_for_update()
		async with self._sessions.begin() as session:
			rows = list(await session.scalars(claim))
			now = datetime.now(UTC)
			claims: dict[str, Claim] = {}
			for row in rows:
				row.state, row.attempts, row.started_at = JobState.RUNNING.value, row.attempts + 1, now
				row.runner, row.runner_epoch = runner, epoch
				claims[row.id] = Claim(runner=runner, epoch=epoch, attempt=row.attempts)
			present = await session.scalars(select(JobRow.id).where(JobRow.id.in_(job_ids)))
			return Claimed(claims=claims, taken=[job_id for job_id in present if job_id not in claims])

	async def claim(self, job_id: str, runner: str, epoch: int) -> Claim | None:
		"""Another node's queued job for this idle one: None when someone else holds or took it (SKIP LOCKED)."""
		query = (
			select(JobRow)
			.where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
			.with_for_update(skip_locked=True)
		)
		async with self._sessions.begin() as session:
			row = await session.scalar(query)
			if row is None:
				return None
			row.state, row.attempts, row.started_at = JobState.RUNNING.value, row.attempts + 1, datetime.now(UTC)
			row.runner, row.runner_epoch = runner, epoch
			if self.shared:
				await send(session, Control(kind='claimed', job_id=job_id, runner=runner))
			return Claim(runner=runner, epoch=epoch, attempt=row.attempts)

	async def queued(self, limit: int) -> list[StoredJob]:
		"""The queued jobs of every node, in the order they should run: priority ones first, then by acceptance."""
		query = (
			select(JobRow)
			.where(JobRow.state == JobState.QUEUED.value)
			.order_by(JobRow.priority.desc(), JobRow.seq, JobRow.id)
			.limit(limit)
		)
		async with self._sessions() as session:
			return [_stored(row) for row in await session.scalars(query)]

	async def active(self, limit: int) -> list[StoredJob]:
		"""Every node's queued and running jobs (ListJobs on a shared queue)."""
		query = (
			select(JobRow)
			.where(JobRow.state.in_([state.value for state in ACTIVE_STATES]))
			.order_by(JobRow.priority.desc(), JobRow.seq, JobRow.id)
			.limit(limit)
		)
		async with self._sessions() as session:
			return [_stored(row) for row in await session.scalars(query)]

	async def drop(self, job_id: str, end: JobEnd) -> bool:
		"""Ends a job cancelled while queued; False when it is no longer queued (a node claimed it meanwhile)."""
		query = (
			update(JobRow)
			.where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
			.values(state=end.state.value, reason=end.reason, error=end.error, finished_at=end.at)
			.returning(JobRow.id)
		)
		async with self._sessions.begin() as session:
			if (await session.execute(query)).scalar_one_or_none() is None:
				return False
			if self.shared:
				message = Control(kind='dropped', job_id=job_id, reason=end.reason, message=end.error)
				await send(session, message)
			return True

	async def tell(self, message: Control) -> None:
		"""Sends `message` to the other nodes (shared queue only)."""
		async with self._sessions.begin() as session:
			await send(session, message)

	async def requeue(self, job_id: str) -> None:
		"""A job taken back at start-up waits again (its attempts stay counted)."""
		async with self._sessions.begin() as session:
			await session.execute(
				update(JobRow).where(JobRow.id == job_id).values(state=JobState.QUEUED.value, runner='')
			)

	async def end(self, job_id: str, end: JobEnd) -> None:
		async with self._sessions.begin() as session:
			await end_in(session, job_id, end)

	async def unfinished(self, node: str) -> list[StoredJob]:
		"""The node's queued and running jobs, in acceptance order: those it accepted that no other node runs, and
		those it ran for another (never another node's running job)."""
		mine = or_(and_(JobRow.node == node, JobRow.runner.in_(['', node])), JobRow.runner == node)
		query = (
			select(JobRow)
			.where(mine, JobRow.state.in_([state.value for state in ACTIVE_STATES]))
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

	async def holds(self, job_id: str, claim: Claim) -> bool:
		"""Whether the job's row is still the run `claim` names (not taken over meanwhile)."""
		async with self._sessions() as session:
			found = await session.scalar(select(JobRow.id).where(JobRow.id == job_id, _run_by(claim)))
			return found is not None

	async def get(self, job_id: str) -> StoredJob | None:
		async with self._sessions() as session:
			row = await session.get(JobRow, job_id)
			return _stored(row) if row is not None else None
