"""The queue in the store: every generation job is written when it is accepted (before its caller hears
`queued`), marked running when it starts (the worker waits for that write: a start always counts), and ended
with its history record in one transaction (the recorder passes `end_of` to the history repository). A job
cancelled while queued is ended here. A restart takes the unfinished ones back (resume.py).

Upscale jobs are not written: their one result is their stream's, so a restart would have no one to give it to.
"""

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.errors import (
	DiffusiondError,
	ShutdownCancelledError,
	ShuttingDownError,
	StorageFullError,
	StorageReadOnlyError,
)
from diffusiond.server.job_records import JobEnd, StoredJob, job_end
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import GenerateParams, JobState
from diffusiond.server.store.job_repo import JobRepository

log = logging.getLogger(__name__)
_RUNNING_WRITE_S = 30.0  # the longest a job's start waits for its store write
JobsHook = Callable[[list[Job]], None]  # loop-side, for the shared queue (cluster/)


class Journal:
	def __init__(self, repo: JobRepository, loop: asyncio.AbstractEventLoop, node: str, resume: bool) -> None:
		self.repo = repo
		self._loop = loop
		self._node = node
		self._resume = resume
		self._seq = 0
		self._pending: set[asyncio.Task[None]] = set()
		self.epoch: Callable[[], int] = lambda: 0  # this node's lease epoch (cluster/heartbeat.py), for claims
		self.on_running: JobsHook | None = None  # jobs this node claimed start here
		self.on_taken: JobsHook | None = None  # jobs another node claimed first: followed, not run
		self.on_lost_race: Callable[[str], None] | None = None  # a job cancelled here while another node took it

	def next_seq(self) -> int:
		"""The acceptance order of the next job written (by time, so the nodes of a shared queue agree)."""
		self._seq = max(self._seq + 1, time.time_ns())
		return self._seq

	async def accept(self, job: Job, params: GenerateParams, deadline_s: float | None) -> None:
		"""Writes the job as queued, with what runs it again: its request with the seed it was given. A store that
		cannot take it (a full or read-only disk, a database that is down) costs the job its resumption, not its
		run: it goes on in memory, as its history record will (the client is told where that fails)."""
		try:
			await self._write(job, params, deadline_s)
		except (SQLAlchemyError, StorageFullError, StorageReadOnlyError) as exc:
			log.warning('job %s is not in the store (%s): it runs, but a restart would not resume it', job.id, exc)

	async def _write(self, job: Job, params: GenerateParams, deadline_s: float | None) -> None:
		fixed = params.model_copy(update={'seed': job.spec.seeds[0] if job.spec.seeds else params.seed})
		deadline = job.created_at + timedelta(seconds=deadline_s) if deadline_s is not None else None
		stored = StoredJob(
			id=job.id,
			node=self._node,
			state=JobState.QUEUED,
			priority=job.priority,
			keep_running=job.keep_running,
			params=fixed.model_dump_json(),
			info=job.info(0),
			attempts=0,
			model=job.model.name,
			created_at=job.created_at,
			deadline_at=deadline,
		)
		await self.repo.add(stored, self.next_seq())

	def end_of(self, job: Work, error: DiffusiondError | None) -> JobEnd | None:
		"""How the store should end `job` (None: leave it unfinished, for the next start to run). A job nobody
		waits for that a shutdown interrupted is resumed, like one a crash interrupted."""
		if self._resume and job.keep_running and isinstance(error, ShutdownCancelledError | ShuttingDownError):
			return None
		return job_end(job.state, error, job.claim)

	# The worker's side.

	def running(self, jobs: list[Job]) -> list[Job]:
		"""Blocks until the store counts the jobs' start; returns the ones to run here: not those another node
		claimed first (a store that fails is logged; the jobs still run). A job claimed already (taken from another
		node's queue) needs no write."""
		fresh = [job for job in jobs if job.claim is None]
		taken: set[str] = set()
		if fresh:
			taken = self._claim(fresh)
		run = [job for job in jobs if job.id not in taken]
		if taken and self.on_taken is not None:
			self._loop.call_soon_threadsafe(self.on_taken, [job for job in jobs if job.id in taken])
		if run and self.on_running is not None:
			self._loop.call_soon_threadsafe(self.on_running, run)
		return run

	def _claim(self, jobs: list[Job]) -> set[str]:
		ids = [job.id for job in jobs]
		try:
			found = self.repo.running(ids, self._node, self.epoch())
			claimed = asyncio.run_coroutine_threadsafe(found, self._loop).result(_RUNNING_WRITE_S)
		except (SQLAlchemyError, DiffusiondError, concurrent.futures.TimeoutError, RuntimeError) as exc:
			# RuntimeError: the loop closed under a daemon that did not drain
			log.error('job(s) %s: the store did not record their start: %s', ', '.join(ids), exc)
			return set()
		for job in jobs:
			job.claim = claimed.claims.get(job.id)
		missing = [job_id for job_id in ids if job_id not in claimed.claims and job_id not in claimed.taken]
		if missing:  # not in the store (it could not take them when they were accepted)
			log.warning('job(s) %s run without a row in the store', ', '.join(missing))
		return set(claimed.taken)

	def dropped(self, job: Work, error: DiffusiondError) -> None:
		"""Thread-safe: a queued job was cancelled (CancelJob, its caller left, a shutdown)."""
		if isinstance(job, Job):
			self._loop.call_soon_threadsafe(self._spawn, self._drop(job, error))

	# The loop's side.

	def _spawn(self, work: Coroutine[object, object, None]) -> None:
		task = self._loop.create_task(work)
		self._pending.add(task)
		task.add_done_callback(self._pending.discard)

	async def _end(self, job: Work, error: DiffusiondError | None) -> None:
		end = self.end_of(job, error)
		if end is None:
			return
		try:
			await self.repo.end(job.id, end)
		except (SQLAlchemyError, DiffusiondError) as exc:
			log.error('job %s: the store did not record its end: %s', job.id, exc)

	async def _drop(self, job: Work, error: DiffusiondError) -> None:
		"""A queued job's end, unless another node claimed it meanwhile: then that node is told to cancel it."""
		end = self.end_of(job, error)
		if end is None:
			return
		if job.claim is not None:  # claimed from another node's queue, cancelled before it started here
			await self._end(job, error)
			return
		try:
			if not await self.repo.drop(job.id, end) and self.on_lost_race is not None:
				self.on_lost_race(job.id)
		except (SQLAlchemyError, DiffusiondError) as exc:
			log.error('job %s: the store did not record its end: %s', job.id, exc)

	def ended(self, job: Work, error: DiffusiondError | None) -> None:
		"""Loop-only: a job that has no history record to end with (its record could not be written)."""
		self._spawn(self._end(job, error))

	async def idle(self) -> None:
		while self._pending:
			await asyncio.gather(*self._pending)
