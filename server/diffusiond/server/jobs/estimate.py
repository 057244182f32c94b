"""Run-time estimates learned from finished jobs, for refusing a deadline that cannot be met up front.

The cost of a job is its work (steps x pixels x images) times a rate in seconds per unit of work,
learned per model (exponential moving average of finished jobs: inference plus encoding). A model
never run yet has no estimate: its jobs are never refused, and they count as free in the queue ahead.
"""

import threading
from collections.abc import Sequence

from diffusiond.server.errors import DeadlineTooShortError
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import JobSpec, JobState

_SMOOTHING = 0.3


def _work(spec: JobSpec) -> float:
	return spec.task.work(spec.steps, spec.width, spec.height) * len(spec.seeds)


class Estimator:
	def __init__(self) -> None:
		self._lock = threading.Lock()
		self._rates: dict[str, float] = {}  # model name -> seconds per unit of work

	def observe(self, specs: list[JobSpec], seconds: float) -> None:
		"""Worker: one pipeline call for `specs` (a job, or a batch of one model) took `seconds` from its first
		step to its last image."""
		rate = seconds / sum(_work(spec) for spec in specs)
		model = specs[0].model
		with self._lock:
			old = self._rates.get(model)
			self._rates[model] = rate if old is None else (1 - _SMOOTHING) * old + _SMOOTHING * rate

	def seconds(self, spec: JobSpec, done_steps: int = 0) -> float | None:
		"""The expected time left for a job of `spec` that has run `done_steps` steps; None if unknown."""
		with self._lock:
			rate = self._rates.get(spec.model)
		if rate is None:
			return None
		left = max(0.0, 1.0 - done_steps / spec.progress_steps)
		return rate * _work(spec) * left

	def wait(self, ahead: Sequence[Work]) -> float:
		"""The expected seconds until the jobs `ahead` (running and queued) have ended; unknown ones (and upscales)
		count as free.

		The running jobs (several when batched) end together: the longest of them, then each queued job."""
		jobs = [other for other in ahead if isinstance(other, Job)]
		running = [self.seconds(other.spec, other.step) or 0.0 for other in jobs if other.state is JobState.RUNNING]
		queued = [self.seconds(other.spec) or 0.0 for other in jobs if other.state is not JobState.RUNNING]
		return max(running, default=0.0) + sum(queued)


def check_deadline(estimator: Estimator, job: Job, ahead: Sequence[Work], deadline_s: float) -> None:
	"""Raises DeadlineTooShortError when the jobs ahead plus `job` are expected to outlast `deadline_s`."""
	own = estimator.seconds(job.spec)
	if own is None:
		return
	wait = estimator.wait(ahead)
	if wait + own <= deadline_s:
		return
	raise DeadlineTooShortError(
		f'the job needs about {wait + own:.1f}s ({wait:.1f}s waiting for {len(ahead)} job(s) ahead, '
		f'{own:.1f}s to run) but the deadline leaves {deadline_s:.1f}s; allow more time, fewer steps or a '
		'smaller size, or retry when the queue is shorter',
		metadata={'estimated_s': f'{wait + own:.2f}', 'deadline_s': f'{deadline_s:.2f}', 'jobs_ahead': str(len(ahead))},
	)
