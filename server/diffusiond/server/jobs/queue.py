"""The bounded job queue shared by the event loop (submit, cancel, list) and the worker thread (take).

Pure bookkeeping under one lock; it never touches torch. Events go out through each job's channel,
which is thread-safe, so every method may be called from either side.
"""

import collections
import threading
from collections.abc import Callable

from diffusiond.server.errors import (
	DiffusiondError,
	JobCancelledError,
	JobFinishedError,
	JobNotFoundError,
	QueueFullError,
	ShutdownCancelledError,
	ShuttingDownError,
)
from diffusiond.server.events import JobInfo, QueuedEvent
from diffusiond.server.jobs.batching import BatchFits, any_size, partners
from diffusiond.server.jobs.estimate import Estimator
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.upscale_job import UpscaleJob
from diffusiond.server.schemas import JobState

_RECENT_LIMIT = 1024

ControlTask = Callable[[], None]
Queued = Job | UpscaleJob  # what waits in the queue
DropHook = Callable[[Queued, DiffusiondError], None]  # a queued job was cancelled (the journal ends it)
DoneHook = Callable[[], None]  # the worker handed a job back (an idle node may claim another's, cluster/)


class JobQueue:
	def __init__(self, capacity: int, estimator: Estimator, batch_max_images: int = 1) -> None:
		self.capacity = capacity
		self._estimator = estimator  # the one source of job-time estimates (estimate.py)
		self._batch_max_images = batch_max_images  # 1 = no batching
		self._lock = threading.Condition()
		self._jobs: collections.deque[Queued] = collections.deque()
		self._control: collections.deque[ControlTask] = collections.deque()
		self._running: list[Queued] = []  # one job, or the jobs of one batch
		self._recent: collections.OrderedDict[str, JobState] = collections.OrderedDict()
		self._accepting: set[str] = set()  # jobs being written to the store before they are put here
		self._closing = False
		self._stopped = False
		self.on_drop: DropHook | None = None
		self.on_done: DoneHook | None = None
		self.fits: BatchFits = any_size  # whether a batch's call fits the device (worker thread: the engine's)

	def _announce_positions(self) -> None:
		total = len(self._jobs)
		for index, job in enumerate(self._jobs):
			job.channel.publish(QueuedEvent(position=index + 1, queue_length=total))

	def _remember(self, job: Queued) -> None:
		self._recent[job.id] = job.state
		while len(self._recent) > _RECENT_LIMIT:
			self._recent.popitem(last=False)

	def _refuse(self) -> None:
		"""Call with the lock held: raises when a new job cannot be queued."""
		if self._closing:
			raise ShuttingDownError('the daemon is shutting down and accepts no new jobs')
		if len(self._jobs) >= self.capacity:
			wait = max(1.0, self._estimator.wait([*self._running, *self._jobs]))
			raise QueueFullError(
				f'the queue is full ({self.capacity} jobs waiting); retry in about {wait:.0f}s',
				retry_after_s=wait,
				metadata={'capacity': str(self.capacity)},
			)

	def check_room(self) -> None:
		"""Raises what `put` would raise now (checked before a job is written to the store)."""
		with self._lock:
			self._refuse()

	def reserve(self, job_id: str) -> None:
		"""A job of this node's that is being written to the shared store counts as queued here until `put` (or
		`release`): an idle node's claimer must not take it for another node's job meanwhile."""
		with self._lock:
			self._accepting.add(job_id)

	def release(self, job_id: str) -> None:
		with self._lock:
			self._accepting.discard(job_id)

	def put(self, job: Queued, resumed: bool = False) -> None:
		"""`resumed`: a job taken back from the store at start-up, queued whatever the capacity."""
		with self._lock:
			self._accepting.discard(job.id)
			if not resumed:
				self._refuse()
			if job.priority:  # behind earlier priority jobs, ahead of the rest
				ahead = sum(1 for queued in self._jobs if queued.priority)
				self._jobs.insert(ahead, job)
				self._announce_positions()
			else:
				self._jobs.append(job)
				total = len(self._jobs)
				job.channel.publish(QueuedEvent(position=total, queue_length=total))
			self._lock.notify()

	def put_control(self, task: ControlTask) -> None:
		"""Runs `task` on the worker before the next job."""
		with self._lock:
			self._control.append(task)
			self._lock.notify()

	def take(self) -> list[Job] | UpscaleJob | ControlTask | None:
		"""Worker-only: blocks for the next control task, upscale or job; None once stopped and empty.

		A job comes with the queued jobs that share its pipeline call when batching is on (batching.py)."""
		with self._lock:
			while not (self._control or self._jobs or self._stopped):
				self._lock.wait()
			if self._control:
				return self._control.popleft()
			if not self._jobs:
				return None
			head = self._jobs.popleft()
			if isinstance(head, UpscaleJob):
				head.state = JobState.RUNNING
				self._running = [head]
				self._announce_positions()
				return head
			generations = [job for job in self._jobs if isinstance(job, Job)]
			batch = [head, *partners(head, generations, self._batch_max_images, self.fits)]
			for job in batch[1:]:
				self._jobs.remove(job)
			for job in batch:
				job.state = JobState.RUNNING
			self._running = list(batch)
			self._announce_positions()
			return batch

	def done(self, jobs: list[Queued]) -> None:
		"""Worker-only: the running job or batch ended (their states are final)."""
		with self._lock:
			self._running = []
			for job in jobs:
				self._remember(job)
		if self.on_done is not None:
			self.on_done()

	def cancel(self, job_id: str, error: DiffusiondError | None = None, finish_early: bool = False) -> JobState:
		"""Cancels a queued (removed at once) or running (stops within one step) job; `finish_early`: a running
		one delivers its image as it is at the next step."""
		with self._lock:
			job = self._find(job_id, 'nothing to cancel')
			if job.finished:  # final, not yet handed back by the worker: ended, as snapshot() and ListJobs say
				raise _finished(job_id, job.state, 'nothing to cancel')
			if job in self._running:
				if finish_early:
					job.finish_early.set()
				else:
					job.request_cancel(error or JobCancelledError(f'job {job_id} was cancelled by CancelJob'))
				return JobState.RUNNING
			self._jobs.remove(job)
			self._drop(job, error or JobCancelledError(f'queued job {job_id} was cancelled by CancelJob'))
			self._announce_positions()
			return JobState.QUEUED

	def find(self, job_id: str) -> Queued:
		"""The queued or running job `job_id`; JOB_ALREADY_FINISHED or JOB_NOT_FOUND otherwise."""
		with self._lock:
			return self._find(job_id, f'its images are in history (GetGeneration {job_id})')

	def _find(self, job_id: str, when_finished: str) -> Queued:
		for job in self._active():
			if job.id == job_id:
				return job
		if job_id in self._recent:
			raise _finished(job_id, self._recent[job_id], when_finished)
		raise JobNotFoundError(f'job {job_id} is neither queued nor running; ListJobs shows the current jobs')

	def _active(self) -> list[Queued]:
		"""The running job, then the queued ones in order (call with the lock held)."""
		return self._running + list(self._jobs)

	def _drop(self, job: Queued, error: DiffusiondError, ended_elsewhere: bool = False) -> None:
		job.state = JobState.CANCELLED
		self._remember(job)
		job.channel.fail(error)
		if self.on_drop is not None and not ended_elsewhere:
			self.on_drop(job, error)

	def detach(self, job_id: str) -> Queued | None:
		"""Takes a queued job out without ending it: another node claimed it and runs it (cluster/)."""
		with self._lock:
			job = next((queued for queued in self._jobs if queued.id == job_id), None)
			if job is not None:
				self._jobs.remove(job)
				self._announce_positions()
			return job

	def discard(self, job_id: str, error: DiffusiondError) -> bool:
		"""Cancels a queued job whose end the store already has (cancelled through another node)."""
		with self._lock:
			job = next((queued for queued in self._jobs if queued.id == job_id), None)
			if job is None:
				return False
			self._jobs.remove(job)
			self._drop(job, error, ended_elsewhere=True)
			self._announce_positions()
			return True

	def queued_ids(self) -> set[str]:
		"""This node's jobs: running, queued, and being accepted (`reserve`)."""
		with self._lock:
			return {job.id for job in self._active()} | self._accepting

	def cancel_queued(self) -> list[str]:
		"""Cancels every queued job (the running one goes on); returns their ids in queue order."""
		with self._lock:
			dropped = list(self._jobs)
			self._jobs.clear()
			for job in dropped:
				self._drop(job, JobCancelledError(f'queued job {job.id} was cancelled by CancelQueuedJobs'))
			return [job.id for job in dropped]

	def close(self) -> list[Queued]:
		"""Refuses new jobs, cancels every queued one; returns the running ones."""
		with self._lock:
			self._closing = True
			while self._jobs:
				job = self._jobs.popleft()
				self._drop(
					job,
					ShutdownCancelledError(f'the daemon shut down before queued job {job.id} started; submit it again'),
				)
			return list(self._running)

	def stop(self) -> None:
		"""Lets the worker exit once the queue is empty."""
		with self._lock:
			self._stopped = True
			self._lock.notify_all()

	def snapshot(self) -> list[JobInfo]:
		"""The running job or batch (position 0), then the queued ones in order. A job whose outcome is final is
		left out, though the worker has not yet handed it back (done()): its caller may already hear `completed`."""
		with self._lock:
			jobs = [job.info(0) for job in self._running if not job.finished]
			return jobs + [job.info(index + 1) for index, job in enumerate(self._jobs)]

	def running(self) -> list[Queued]:
		"""The running job, or the jobs of the running batch."""
		with self._lock:
			return list(self._running)

	def ahead(self) -> list[Queued]:
		"""The jobs a new one would wait for: the running one, then the queued ones."""
		with self._lock:
			return self._active()

	@property
	def depth(self) -> int:
		return len(self._jobs)

	@property
	def busy(self) -> bool:
		return bool(self._running)


def _finished(job_id: str, state: JobState, then: str) -> JobFinishedError:
	return JobFinishedError(f'job {job_id} already finished ({state.value}); {then}')
