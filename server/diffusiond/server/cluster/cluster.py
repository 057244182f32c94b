"""The shared queue (several daemons on one PostgreSQL): this node's part. Its own jobs stay in its own queue
and run here in order; an idle node claims queued jobs of the others (stealer.py); every job running here relays
its events (relay.py) and the nodes that follow it from elsewhere read them (feeds.py); CancelJob, WatchJob,
ListJobs and CancelQueuedJobs reach jobs of any node; a node whose lease lapsed is taken over (reaper.py). The
database's row for a job is the one arbiter of who runs it (claims under row locks, ends fenced by the claim)."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from diffusiond.server.cluster.bus import Bus
from diffusiond.server.cluster.feeds import Feeds
from diffusiond.server.cluster.forward import Forwarder
from diffusiond.server.cluster.reaper import Reaper
from diffusiond.server.cluster.relay import Relay
from diffusiond.server.cluster.remote import RemoteWork
from diffusiond.server.cluster.stealer import Stealer
from diffusiond.server.errors import DiffusiondError, JobCancelledError, from_reason
from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import ACTIVE_STATES, Control, StoredJob, job_end
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.journal import Journal
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import JobState
from diffusiond.server.store.event_repo import EventRepository
from diffusiond.server.store.job_repo import JobRepository
from diffusiond.server.store.node_repo import NodeRepository

log = logging.getLogger(__name__)


class Cluster:
	def __init__(
		self,
		url: str,
		repo: JobRepository,
		events: EventRepository,
		queue: JobQueue,
		stealer: Stealer,
		reaper: Reaper,
		nodes: NodeRepository,
		lease_s: float,
	) -> None:
		self._repo = repo
		self._events = events
		self._queue = queue
		self.feeds = Feeds(events)
		self.forwarder = Forwarder(repo, nodes, self.feeds, lease_s)  # jobs for models only other nodes have
		self.relay = Relay(events, '')
		self.stealer = stealer
		self.reaper = reaper
		self.bus = Bus(url, self._event, self._control)
		self.node = ''
		self._loop: asyncio.AbstractEventLoop | None = None
		self._tasks: set[asyncio.Task[None]] = set()

	def attach(self, journal: Journal, node: str, epoch: Callable[[], int]) -> None:
		"""Hooks this node's journal and queue to the shared queue (before anything is queued)."""
		self.node = node
		self._loop = asyncio.get_running_loop()
		self.relay = Relay(self._events, node)
		journal.epoch = self.stealer.epoch = epoch
		journal.on_running = self._running_here
		journal.on_taken = self._taken
		journal.on_lost_race = self._lost_race
		self._queue.on_done = lambda: self._threadsafe(self.stealer.wake)

	async def listen(self) -> None:
		await self.bus.start()

	def start(self) -> None:
		"""Claims and takes over from now on (once this node's own unfinished jobs resumed)."""
		self.stealer.start(self.node)
		self.reaper.start(self.node)

	async def stop(self) -> None:
		"""Before the drain: claims no more (the jobs running here finish and relay their end)."""
		await self.stealer.stop()
		await self.reaper.stop()

	async def close(self) -> None:
		"""After the drain."""
		await self.relay.idle()
		await self.bus.stop()
		while self._tasks:
			await asyncio.gather(*self._tasks)

	def _threadsafe(self, callback: Callable[[], None]) -> None:
		if self._loop is not None and not self._loop.is_closed():
			self._loop.call_soon_threadsafe(callback)

	def _spawn(self, work: Awaitable[object]) -> None:
		async def run() -> None:
			await work

		task = asyncio.get_running_loop().create_task(run())
		self._tasks.add(task)
		task.add_done_callback(self._tasks.discard)

	# Hooks (loop-side).

	def _running_here(self, jobs: list[Job]) -> None:
		for job in jobs:
			self.relay.follow(job)

	def _taken(self, jobs: list[Job]) -> None:
		for job in jobs:
			self._spawn(self.feeds.follow(job))

	def _lost_race(self, job_id: str) -> None:
		self._spawn(self._cancel_runner(job_id, False))

	async def _cancel_runner(self, job_id: str, finish_early: bool) -> StoredJob | None:
		stored = await self._repo.get(job_id)
		if stored is not None and stored.state is JobState.RUNNING:
			await self._repo.tell(
				Control(kind='cancel', job_id=job_id, runner=stored.runner, finish_early=finish_early)
			)
		return stored

	# The bus (loop-side).

	def _event(self, job_id: str) -> None:
		if self.feeds.get(job_id) is not None:
			self._spawn(self.feeds.read(job_id))

	def _control(self, message: Control) -> None:
		match message.kind:
			case 'queued':
				self.stealer.wake()
			case 'claimed' if message.runner != self.node:
				job = self._queue.detach(message.job_id)
				if job is not None:
					self._spawn(self.feeds.follow(job))
			case 'cancel' if message.runner == self.node:
				with contextlib.suppress(DiffusiondError):  # it ended meanwhile
					self._queue.cancel(message.job_id, finish_early=message.finish_early)
			case 'dropped':
				error = from_reason(message.reason, message.message)
				self._queue.discard(message.job_id, error)
				self.feeds.fail(message.job_id, error)

	# The services' side: jobs of other nodes.

	async def find(self, job_id: str) -> Work | None:
		"""Another node's queued or running job (followed here from now on); None when the store has no such one."""
		followed = self.feeds.get(job_id)
		if followed is not None:
			return followed
		stored = await self._repo.get(job_id)
		if stored is None or stored.state not in ACTIVE_STATES or self._loop is None:
			return None
		return await self.feeds.follow(RemoteWork(stored, EventChannel(self._loop)))

	async def cancel(self, job_id: str, finish_early: bool) -> JobState | None:
		"""CancelJob for another node's job: its state before (None: not an active job in the store)."""
		stored = await self._repo.get(job_id)
		if stored is not None and stored.state is JobState.QUEUED:
			error = JobCancelledError(f'queued job {job_id} was cancelled by CancelJob')
			if await self._repo.drop(job_id, job_end(JobState.CANCELLED, error)):
				self.feeds.fail(job_id, error)  # its stream here ends now, not when this node's NOTIFY comes back
				return JobState.QUEUED
		stored = await self._cancel_runner(job_id, finish_early)
		return JobState.RUNNING if stored is not None and stored.state is JobState.RUNNING else None

	def abandon(self, job: Work, why: str) -> None:
		"""The caller of a job another node runs (or is to run) went away: it is dropped from the shared queue, or
		the node running it is told to cancel it."""
		if self.feeds.get(job.id) is job and not job.finished:
			self._spawn(self.cancel(job.id, False))

	async def listing(self, here: set[str], limit: int) -> list[JobInfo]:
		"""The active jobs of the other nodes (running ones first)."""
		found = [stored for stored in await self._repo.active(limit) if stored.id not in here]
		found.sort(key=lambda stored: stored.state is not JobState.RUNNING)
		position = 0
		listed: list[JobInfo] = []
		for stored in found:
			position += stored.state is JobState.QUEUED
			listed.append(
				stored.info.model_copy(update={'position': position if stored.state is JobState.QUEUED else 0})
			)
		return listed

	async def cancel_queued(self, here: set[str]) -> list[str]:
		"""CancelQueuedJobs reaches every node's queued jobs."""
		dropped: list[str] = []
		for stored in await self._repo.queued(100_000):
			if stored.id in here:
				continue
			error = JobCancelledError(f'queued job {stored.id} was cancelled by CancelQueuedJobs')
			if await self._repo.drop(stored.id, job_end(JobState.CANCELLED, error)):
				self.feeds.fail(stored.id, error)
				dropped.append(stored.id)
		return dropped
