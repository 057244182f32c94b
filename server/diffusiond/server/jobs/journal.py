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
from collections.abc import Coroutine
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


class Journal:
	def __init__(self, repo: JobRepository, loop: asyncio.AbstractEventLoop, node: str, resume: bool) -> None:
		self.repo = repo
		self._loop = loop
		self._node = node
		self._resume = resume
		self._seq = 0
		self._pending: set[asyncio.Task[None]] = set()

	def _next_seq(self) -> int:
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
			created_at=job.created_at,
			deadline_at=deadline,
		)
		await self.repo.add(stored, self._next_seq())

	def end_of(self, job: Work, error: DiffusiondError | None) -> JobEnd | None:
		"""How the store should end `job` (None: leave it unfinished, for the next start to run). A job nobody
		waits for that a shutdown interrupted is resumed, like one a crash interrupted."""
		if self._resume and job.keep_running and isinstance(error, ShutdownCancelledError | ShuttingDownError):
			return None
		return job_end(job.state, error)

	# The worker's side.

	def running(self, jobs: list[Job]) -> None:
		"""Blocks until the store counts the jobs' start (a store that fails is logged; the jobs still run)."""
		try:
			future = asyncio.run_coroutine_threadsafe(self.repo.running([job.id for job in jobs]), self._loop)
			claimed = future.result(_RUNNING_WRITE_S)
			if len(claimed) < len(jobs):  # not in the store (it could not take them when they were accepted)
				log.warning(
					'job(s) %s run without a row in the store', ', '.join(j.id for j in jobs if j.id not in claimed)
				)
		except (SQLAlchemyError, DiffusiondError, concurrent.futures.TimeoutError, RuntimeError) as exc:
			# RuntimeError: the loop closed under a daemon that did not drain
			log.error('job(s) %s: the store did not record their start: %s', ', '.join(j.id for j in jobs), exc)

	def dropped(self, job: Work, error: DiffusiondError) -> None:
		"""Thread-safe: a queued job was cancelled (CancelJob, its caller left, a shutdown)."""
		if isinstance(job, Job):
			self._loop.call_soon_threadsafe(self._spawn, self._end(job, error))

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

	def ended(self, job: Work, error: DiffusiondError | None) -> None:
		"""Loop-only: a job that has no history record to end with (its record could not be written)."""
		self._spawn(self._end(job, error))

	async def idle(self) -> None:
		while self._pending:
			await asyncio.gather(*self._pending)
