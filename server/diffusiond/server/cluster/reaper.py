"""Failure handling on the shared queue: with each heartbeat, a node looks for others whose lease lapsed (killed,
powered off, cut off from the database) or that stopped with jobs still marked running, and takes them over
(store/takeover.py): their running jobs are queued again for any node (one more run, as after a restart), and
their queued jobs are claimable as always. Old relayed events are purged now and then."""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.cluster.tasks import stop_task
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.settings_groups import ClusterSettings
from diffusiond.server.store.node_repo import NodeRepository
from diffusiond.server.store.takeover import Takeover, purge_events, take_over

log = logging.getLogger(__name__)
_PURGE_EVERY_S = 60.0


class Reaper:
	def __init__(
		self, sessions: async_sessionmaker[AsyncSession], nodes: NodeRepository, settings: ClusterSettings
	) -> None:
		self._sessions = sessions
		self._nodes = nodes
		self._settings = settings
		self._task: asyncio.Task[None] | None = None
		self._purged = 0.0
		self.node = ''
		self.taken: list[Takeover] = []  # what this node took over, newest last (GetSystemInfo, tests)

	def start(self, node: str) -> None:
		self.node = node
		self._task = asyncio.get_running_loop().create_task(self._run(), name='diffusiond-reaper')

	async def _run(self) -> None:
		while True:
			await asyncio.sleep(self._settings.heartbeat_s)
			try:
				await self.sweep()
			except (SQLAlchemyError, OSError, DiffusiondError) as exc:
				log.warning('node %s: could not look for lapsed nodes: %s', self.node, exc)
			except Exception:  # a bug must not stop this node from ever taking over again
				log.exception('node %s: looking for lapsed nodes failed', self.node)

	async def sweep(self) -> None:
		now = datetime.now(UTC)
		cutoff = now - timedelta(seconds=self._settings.lease_s)
		for record in await self._nodes.all():
			if record.id == self.node:
				continue
			report = await take_over(self._sessions, record.id, cutoff)
			if report is not None and (report.requeued or report.ended or record.serving):
				self.taken.append(report)
				log.warning(
					'node %s took over node %s (%s): %d running job(s) queued again, %d ended',
					self.node,
					record.id,
					'lease lapsed' if record.serving else 'stopped',
					len(report.requeued),
					len(report.ended),
				)
		if time.monotonic() - self._purged >= _PURGE_EVERY_S:
			self._purged = time.monotonic()
			await purge_events(self._sessions, now - timedelta(seconds=self._settings.events_keep_s))

	async def stop(self) -> None:
		await stop_task(self._task)
		self._task = None
