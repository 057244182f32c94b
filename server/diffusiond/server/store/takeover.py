"""Taking over a node whose lease expired, or that stopped with jobs it ran still marked running (cluster/reaper.py):
in one transaction, a lapsed node is marked lost (a heartbeat from it is refused from then on: it joins again,
with a new epoch), and the jobs it was running are queued again
for any node (the same rule as a restart: one more run; a job whose images were recorded ends SUCCEEDED). Its
queued jobs need nothing: any node claims queued rows. Only one node takes over (SKIP LOCKED on the node row)."""

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.errors import InterruptedTwiceError
from diffusiond.server.job_records import MAX_ATTEMPTS, Control
from diffusiond.server.schemas import JobState
from diffusiond.server.store.node_repo import LOST, SERVING, STOPPED
from diffusiond.server.store.notify import send
from diffusiond.server.store.tables import GenerationRow, JobEventRow, JobRow, NodeRow


class Takeover(BaseModel):
	node: str
	requeued: list[str] = Field(default_factory=list)
	ended: dict[str, str] = Field(default_factory=dict)  # job id → its final state


async def _settle(session: AsyncSession, row: JobRow, report: Takeover) -> None:
	recorded = await session.scalar(select(GenerationRow.state).where(GenerationRow.id == row.id))
	if recorded == JobState.SUCCEEDED.value:  # its images were recorded just before the node went
		row.state, row.finished_at = JobState.SUCCEEDED.value, datetime.now(UTC)
	elif row.attempts >= MAX_ATTEMPTS:
		error = InterruptedTwiceError(f'job {row.id} was running when its daemon went, {row.attempts} times')
		row.state, row.reason, row.error = JobState.FAILED.value, error.reason, error.message
		row.finished_at = datetime.now(UTC)
	else:
		await session.execute(delete(GenerationRow).where(GenerationRow.id == row.id))  # the lost run's record
		row.state, row.runner = JobState.QUEUED.value, ''
		report.requeued.append(row.id)
		return
	report.ended[row.id] = row.state


async def take_over(sessions: async_sessionmaker[AsyncSession], node: str, cutoff: datetime) -> Takeover | None:
	"""Takes over `node` if its last heartbeat is older than `cutoff` and no other node is doing it."""
	running = select(JobRow).where(JobRow.runner == node, JobRow.state == JobState.RUNNING.value)
	gone = or_(
		and_(NodeRow.state == SERVING, NodeRow.heartbeat_at < cutoff),
		and_(NodeRow.state == STOPPED, running.exists()),  # stopped while a job it claimed was running
	)
	async with sessions.begin() as session:
		row = await session.scalar(select(NodeRow).where(NodeRow.id == node, gone).with_for_update(skip_locked=True))
		if row is None:
			return None
		if row.state == SERVING:  # its heartbeat is refused from now on: it joins again (a new epoch)
			row.state = LOST
		report = Takeover(node=node)
		for job in list(await session.scalars(running.with_for_update())):
			await _settle(session, job, report)
		if report.requeued:
			await send(session, Control(kind='queued'))
		return report


async def purge_events(sessions: async_sessionmaker[AsyncSession], before: datetime) -> None:
	"""Relayed events older than `before` (every follower has long read them)."""
	async with sessions.begin() as session:
		await session.execute(delete(JobEventRow).where(JobEventRow.at < before))
