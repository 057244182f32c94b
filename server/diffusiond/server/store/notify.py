"""PostgreSQL NOTIFY inside a transaction: delivered to every listening daemon when the transaction commits
(cluster/bus.py listens). Payloads are references (a job id, a small control message), never images."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from diffusiond.server.job_records import Control

EVENTS = 'diffusiond_events'  # payload: a job id whose events table has new rows
CONTROL = 'diffusiond_control'  # payload: a Control as JSON


async def notify(session: AsyncSession, channel: str, payload: str) -> None:
	"""Nothing on SQLite: one process, no one else to tell."""
	if session.get_bind().dialect.name == 'postgresql':
		await session.execute(select(func.pg_notify(channel, payload)))


async def send(session: AsyncSession, message: Control) -> None:
	await notify(session, CONTROL, message.model_dump_json())
