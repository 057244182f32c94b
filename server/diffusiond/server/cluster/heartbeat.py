"""This daemon's lease on the nodes table: joined at start (a new epoch), renewed every `cluster.heartbeat_s`
with what it is doing, left on a clean stop. A node whose lease is older than `cluster.lease_s` counts as gone.
A heartbeat that finds a newer epoch (the same node id started elsewhere) is logged: that daemon holds the
lease now."""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.cluster.tasks import stop_task
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.node_records import NodeRecord, NodeStatus
from diffusiond.server.settings import ClusterSettings
from diffusiond.server.store.node_repo import NodeRepository

log = logging.getLogger(__name__)
_STORE_ERRORS = (SQLAlchemyError, DiffusiondError, OSError)


def advertised(host: str, port: int, given: str) -> str:
	"""The address the other daemons reach this one at: `cluster.advertise_address`, else the listening host and
	port (a wildcard host: this machine's name)."""
	if given:
		return given
	return f'{socket.gethostname() if host in ("0.0.0.0", "::", "") else host}:{port}'


class Heartbeat:
	def __init__(
		self, repo: NodeRepository, status: Callable[[], Awaitable[NodeStatus]], settings: ClusterSettings
	) -> None:
		self.repo = repo
		self._node = ''  # from start(): the node id is settled once the data folder is read
		self._status = status
		self._settings = settings
		self.epoch = 0
		self._task: asyncio.Task[None] | None = None
		self._poked = asyncio.Event()

	async def start(self, node: str, address: str, device: str) -> None:
		"""Joins (a store that cannot take it now is retried with each beat: the daemon serves meanwhile)."""
		self._node = node
		await self._join(address, device)
		self._task = asyncio.create_task(self._run(address, device), name='diffusiond-heartbeat')

	async def _join(self, address: str, device: str) -> None:
		try:
			self.epoch = await self.repo.join(self._node, address, device)
		except _STORE_ERRORS as exc:
			log.warning(
				'node %s: could not register in the store (%s); retrying with the next heartbeat', self._node, exc
			)

	async def _run(self, address: str, device: str) -> None:
		while True:
			with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow the cancel that stops this
				async with asyncio.timeout(self._settings.heartbeat_s):
					await self._poked.wait()
			self._poked.clear()
			if not self.epoch:
				await self._join(address, device)
				continue
			try:
				if not await self.repo.beat(self._node, self.epoch, await self._status()):
					await self._fenced(address, device)
			except _STORE_ERRORS as exc:
				log.warning('node %s: heartbeat not recorded: %s', self._node, exc)

	def poke(self) -> None:
		"""Beats now rather than at the next interval (the catalog was scanned: the other nodes see its models)."""
		self._poked.set()

	async def _fenced(self, address: str, device: str) -> None:
		"""The lease moved on: taken over while this node could not reach the store (it joins again, with a new
		epoch: what it ran meanwhile is fenced off), or the same node id started elsewhere (logged)."""
		if await self.repo.lost(self._node):
			log.warning('node %s: its lease had lapsed and its jobs were taken over; joining again', self._node)
			await self._join(address, device)
		else:
			log.error('node %s was started again elsewhere (newer epoch than %d)', self._node, self.epoch)

	async def stop(self) -> None:
		if self._task is None:
			return
		await stop_task(self._task)
		self._task = None
		if not self.epoch:
			return
		try:
			await self.repo.leave(self._node, self.epoch)
		except _STORE_ERRORS as exc:
			log.warning('node %s: leaving not recorded: %s', self._node, exc)

	def alive(self, record: NodeRecord) -> bool:
		"""Whether `record`'s lease is current."""
		return record.serving and record.heartbeat_at >= datetime.now(UTC) - timedelta(seconds=self._settings.lease_s)
