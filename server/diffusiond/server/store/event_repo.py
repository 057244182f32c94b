"""The relayed events of jobs (cluster/relay.py writes them, cluster/feeds.py reads them): each row is announced
by a NOTIFY naming its job, in the transaction that adds it."""

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.store.notify import EVENTS, notify
from diffusiond.server.store.tables import JobEventRow


class EventRow(BaseModel):
	id: int
	body: str


class EventRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	async def append(self, job_id: str, body: str) -> None:
		async with self._sessions.begin() as session:
			session.add(JobEventRow(job_id=job_id, body=body, at=datetime.now(UTC)))
			await notify(session, EVENTS, job_id)

	async def since(self, job_id: str, after: int) -> list[EventRow]:
		"""The job's events after row `after`, in order."""
		query = (
			select(JobEventRow.id, JobEventRow.body)
			.where(JobEventRow.job_id == job_id, JobEventRow.id > after)
			.order_by(JobEventRow.id)
		)
		async with self._sessions() as session:
			return [EventRow(id=row.id, body=row.body) for row in await session.execute(query)]
