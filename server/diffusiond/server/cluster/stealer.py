"""An idle node claims the next queued job of the shared queue that it can run (cluster/choice.py says which
first), so jobs accepted anywhere run wherever a device is free. It looks when woken (a job was queued anywhere,
its own worker handed a job back) and every `cluster.poll_s`. A job whose model or LoRA this node lacks is left
for the others (and looked at again after a while: a rescan may add it); one whose request is wrong for its model
(checked here for a job accepted by a node without the model, cluster/forward.py) ends with that error."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.cluster.choice import claim_order
from diffusiond.server.cluster.tasks import stop_task
from diffusiond.server.errors import DiffusiondError, NotFoundError
from diffusiond.server.job_records import StoredJob, job_end
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.schemas import JobState
from diffusiond.server.settings_groups import ClusterSettings
from diffusiond.server.store.job_repo import JobRepository

log = logging.getLogger(__name__)
_LOOK_AHEAD = 64  # queued jobs read per look
_UNRUNNABLE_S = 30.0  # a job this node could not run is looked at again after this


class Stealer:
	def __init__(
		self,
		repo: JobRepository,
		queue: JobQueue,
		build: Callable[[StoredJob], Awaitable[Job]],
		warm: Callable[[], dict[str, set[str]]],
		settings: ClusterSettings,
	) -> None:
		self._repo = repo
		self._queue = queue
		self._build = build
		self._warm = warm  # model → attached LoRA names (claim_order)
		self._settings = settings
		self._wake = asyncio.Event()
		self._unrunnable: dict[str, float] = {}  # job id → when this node found it could not run it
		self._task: asyncio.Task[None] | None = None
		self.node = ''
		self.epoch: Callable[[], int] = lambda: 0

	def start(self, node: str) -> None:
		self.node = node
		self._task = asyncio.get_running_loop().create_task(self._run(), name='diffusiond-claims')

	def wake(self) -> None:
		"""Loop-only."""
		self._wake.set()

	async def _run(self) -> None:
		while True:
			with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow the cancel that stops this
				async with asyncio.timeout(self._settings.poll_s):
					await self._wake.wait()
			self._wake.clear()
			try:
				while self._idle() and await self._claim_one():
					pass
			except (SQLAlchemyError, OSError, DiffusiondError) as exc:
				log.warning('node %s: could not look for queued jobs: %s', self.node, exc)
			except Exception:  # a bug must not stop this node from ever claiming again
				log.exception('node %s: looking for queued jobs failed', self.node)

	def _idle(self) -> bool:
		return self._queue.depth == 0 and not self._queue.busy

	async def _claim_one(self) -> bool:
		"""Claims and queues here one job of another node's; False when there is none this node can run."""
		now = time.monotonic()
		self._unrunnable = {job_id: at for job_id, at in self._unrunnable.items() if now - at < _UNRUNNABLE_S}
		found = await self._repo.queued(_LOOK_AHEAD)
		here = (
			self._queue.queued_ids()
		)  # read after the rows: a row of this node's was reserved here before it was written
		queued = [job for job in found if job.id not in here]
		order = claim_order(
			[job for job in queued if job.id not in self._unrunnable],
			self._warm(),
			datetime.now(UTC),
			self._settings.prefer_loaded_s,
		)
		for stored in order:
			try:
				job = await self._build(stored)
			except DiffusiondError as exc:
				if stored.forwarded and not isinstance(exc, NotFoundError):  # wrong for its model: ends for its caller
					log.info('node %s: job %s cannot run: %s', self.node, stored.id, exc.message)
					await self._repo.drop(stored.id, job_end(JobState.FAILED, exc))
					continue
				log.info('node %s cannot run job %s (%s); leaving it to the others', self.node, stored.id, exc.message)
				self._unrunnable[stored.id] = now
				continue
			claim = await self._repo.claim(stored.id, self.node, self.epoch())
			if claim is None:
				continue  # another node was quicker
			job.claim = claim
			self._queue.put(job, resumed=True)  # its events are relayed once it starts (cluster.py)
			log.info('node %s claimed job %s (accepted by %s)', self.node, job.id, stored.node)
			return True
		return False

	async def stop(self) -> None:
		await stop_task(self._task)
		self._task = None
