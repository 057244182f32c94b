"""The daemons' one channel to each other: PostgreSQL LISTEN on a connection of its own (asyncpg, already the
driver). `diffusiond_events` names a job with new relayed events, `diffusiond_control` carries a Control. A lost
connection is opened again (every second); what was announced meanwhile is caught up by the next NOTIFY of the
same job and by the idle nodes' polling for queued jobs."""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from diffusiond.server.job_records import Control
from diffusiond.server.store.notify import CONTROL, EVENTS

log = logging.getLogger(__name__)
_RECONNECT_S = 1.0


def listener_dsn(url: str) -> str:
	"""The SQLAlchemy URL (postgresql+asyncpg://…) as asyncpg's own DSN."""
	return make_url(url).set(drivername='postgresql').render_as_string(hide_password=False)


class Bus:
	def __init__(self, url: str, on_event: Callable[[str], None], on_control: Callable[[Control], None]) -> None:
		self._dsn = listener_dsn(url)
		self._on_event = on_event
		self._on_control = on_control
		self._connection: asyncpg.Connection | None = None
		self._reconnect: asyncio.Task[None] | None = None
		self._stopped = False

	async def start(self) -> None:
		await self._connect()

	async def _connect(self) -> None:
		connection = await asyncpg.connect(self._dsn)
		await connection.add_listener(EVENTS, self._event)
		await connection.add_listener(CONTROL, self._control)
		connection.add_termination_listener(self._lost)
		self._connection = connection

	def _event(self, connection: asyncpg.Connection, pid: int, channel: str, payload: str) -> None:
		self._on_event(payload)

	def _control(self, connection: asyncpg.Connection, pid: int, channel: str, payload: str) -> None:
		try:
			message = Control.model_validate_json(payload)
		except ValidationError:
			log.warning('a control message from another daemon could not be read: %.200s', payload)
			return
		self._on_control(message)

	def _lost(self, connection: asyncpg.Connection) -> None:
		if not self._stopped and self._reconnect is None:
			log.warning('the connection that listens to the other daemons closed; opening it again')
			self._reconnect = asyncio.get_running_loop().create_task(self._again())

	async def _again(self) -> None:
		try:
			while not self._stopped:
				try:
					await self._connect()
					return
				except (OSError, asyncpg.PostgresError) as exc:
					log.warning('listening to the other daemons: %s; retrying', exc)
					await asyncio.sleep(_RECONNECT_S)
		finally:
			self._reconnect = None

	async def stop(self) -> None:
		self._stopped = True
		if self._reconnect is not None:
			self._reconnect.cancel()
			with contextlib.suppress(asyncio.CancelledError):
				await self._reconnect
		if self._connection is not None:
			with contextlib.suppress(OSError, asyncpg.PostgresError):
				await self._connection.close()
			self._connection = None
