"""Start-up: the node's unfinished jobs from the store, run again or ended (before the daemon reports SERVING).

Queued jobs are queued again in their order (priority ones ahead, as before), with their ids and seeds, so
WatchJob finds them and their images are the ones they would have had. The job that was running when the
process died runs again once, first; if it was interrupted twice it ends FAILED (INTERRUPTED_TWICE). Their
callers are gone, so they run like `keep_running` jobs and land in history. A job whose deadline passed
ends CANCELLED (DEADLINE_EXCEEDED); with `queue.resume` off every one ends CANCELLED (CANCELLED_BY_RESTART).
"""

import asyncio
import logging
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from diffusiond.server.errors import (
	DeadlineExceededError,
	DiffusiondError,
	InterruptedTwiceError,
	NotFoundError,
	RestartCancelledError,
)
from diffusiond.server.job_records import MAX_ATTEMPTS, StoredJob, job_end
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.intake import Intake
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.schemas import GenerateParams, JobState
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.server.store.job_repo import JobRepository

log = logging.getLogger(__name__)


async def rebuild(intake: Intake, stored: StoredJob, loop: asyncio.AbstractEventLoop) -> Job:
	"""The job of a store row, to run here (a restart, or a job claimed from another node's queue): its id, its
	seed, its request read again by today's rules. Its caller is not here, so it runs like a `keep_running` job."""
	spec, model = await intake.spec(GenerateParams.model_validate_json(stored.params))
	job = Job(spec, model, EventChannel(loop), stored.priority, stored.id, stored.created_at)
	job.keep_running = True
	job.channel.unsubscribe(job.channel.primary)
	return job


class ResumeReport(BaseModel):
	resumed: list[str] = Field(default_factory=list)  # job ids queued again, in queue order
	rerun: list[str] = Field(default_factory=list)  # of those, the ones that had been running
	ended: dict[str, str] = Field(default_factory=dict)  # job id → the reason it ended without running


class Resumer:
	def __init__(
		self,
		repo: JobRepository,
		history: HistoryRepository | None,
		intake: Intake,
		queue: JobQueue,
		loop: asyncio.AbstractEventLoop,
	) -> None:
		self._repo = repo
		self._history = history
		self._intake = intake
		self._queue = queue
		self._loop = loop

	async def _refusal(self, stored: StoredJob, resume: bool) -> tuple[JobState, DiffusiondError | None] | None:
		"""Why `stored` does not run again (its final state and error), or None when it does."""
		if not resume:
			return JobState.CANCELLED, RestartCancelledError(
				f'job {stored.id} was unfinished when the daemon stopped, and resuming is off (queue.resume)'
			)
		if stored.state is JobState.RUNNING:
			if self._history is not None and await self._history.state(stored.id) is JobState.SUCCEEDED:
				return JobState.SUCCEEDED, None  # its images were written just before the process died
			if stored.attempts >= MAX_ATTEMPTS:
				return JobState.FAILED, InterruptedTwiceError(
					f'job {stored.id} was running when the daemon died, {stored.attempts} times; it is not run again'
				)
		if stored.deadline_at is not None and stored.deadline_at <= datetime.now(UTC):
			return JobState.CANCELLED, DeadlineExceededError(
				f'job {stored.id} was not finished by its deadline ({stored.deadline_at.isoformat()}) before the '
				'daemon came back'
			)
		return None

	async def _job(self, stored: StoredJob) -> Job:
		job = await rebuild(self._intake, stored, self._loop)
		if stored.state is JobState.RUNNING:
			job.priority = True  # it had been taken already: first again
		return job

	async def run(self, node: str, resume: bool, shared: bool = False) -> ResumeReport:
		"""`shared`: on a shared queue a queued job whose model (or LoRA…) this node lacks stays queued for the
		nodes that have it (it was accepted here for them, cluster/forward.py)."""
		report = ResumeReport()
		found = await self._repo.unfinished(node)
		found.sort(key=lambda stored: stored.state is not JobState.RUNNING)  # stable: acceptance order kept
		for stored in found:
			refusal = await self._refusal(stored, resume)
			if refusal is None:
				try:
					job = await self._job(stored)
				except NotFoundError as exc:  # its model or LoRA is gone (or on another node only)
					if shared and stored.state is JobState.QUEUED:
						log.info(
							'job %s stays queued for the nodes that have what it needs (%s)', stored.id, exc.message
						)
						continue
					refusal = JobState.FAILED, exc
				except DiffusiondError as exc:  # a rule changed
					refusal = JobState.FAILED, exc
			if refusal is not None:
				state, why = refusal
				await self._repo.end(stored.id, job_end(state, why))
				report.ended[stored.id] = why.reason if why is not None else state.value
				continue
			if self._history is not None:
				await self._history.delete(stored.id)  # the interrupted run's record (failed by recovery)
			if stored.state is JobState.RUNNING:
				await self._repo.requeue(stored.id)
				report.rerun.append(stored.id)
			self._queue.put(job, resumed=True)
			report.resumed.append(stored.id)
		if report.resumed or report.ended:
			log.warning(
				'resumed %d unfinished job(s) from the store (%d were running); ended %d: %s',
				len(report.resumed),
				len(report.rerun),
				len(report.ended),
				', '.join(f'{job_id} {why}' for job_id, why in report.ended.items()) or '-',
			)
		return report
