"""The one worker thread: takes jobs from the queue and runs them on the engine, one call at a time.

A call runs one job, or with dynamic batching on, the queued jobs that can share it (batching.py).
"""

import logging
import threading

from diffusiond.server.errors import DiffusiondError, JobFailedError
from diffusiond.server.jobs.engine_api import Engine
from diffusiond.server.jobs.estimate import Estimator
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.journal import Journal
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.jobs.recorder import Recorder
from diffusiond.server.jobs.run import AllCancelled, BatchRun
from diffusiond.server.jobs.upscale_job import UpscaleJob, run_upscale
from diffusiond.server.schemas import JobState

log = logging.getLogger(__name__)


class Worker:
	def __init__(
		self,
		queue: JobQueue,
		engine: Engine,
		estimator: Estimator,
		recorder: Recorder,
		png_level: int = 4,
		journal: Journal | None = None,
	) -> None:
		self._png_level = png_level
		self._journal = journal
		self._queue = queue
		self._engine = engine
		self._estimator = estimator
		self._recorder = recorder
		self._thread = threading.Thread(target=self._loop, name='diffusiond-worker', daemon=True)

	def start(self) -> None:
		self._thread.start()

	def join(self, timeout: float | None = None) -> None:
		self._thread.join(timeout)

	def _loop(self) -> None:
		while (item := self._queue.take()) is not None:
			if isinstance(item, list):
				jobs = self._journal.running(item) if self._journal is not None else item
				if jobs:  # none: another node claimed them first (cluster/) and runs them
					self._run(jobs)
				self._queue.done(list(jobs))
				for job in jobs:
					job.ended.set()
			elif isinstance(item, UpscaleJob):
				run_upscale(item, self._engine, self._png_level)
				self._queue.done([item])
				item.ended.set()
			else:
				item()

	def _run(self, jobs: list[Job]) -> None:
		run = BatchRun(jobs, self._engine, self._recorder, self._png_level)
		try:
			run.execute()
			if all(job.state is JobState.SUCCEEDED for job in jobs):  # a cancelled job's share would skew it
				self._estimator.observe([job.spec for job in jobs], run.work_s)
		except AllCancelled:
			pass
		except DiffusiondError as exc:
			log.warning('job(s) %s failed: %s', ', '.join(job.id for job in jobs), exc.message)
			run.fail(exc)
		except Exception as exc:
			log.exception('job(s) %s crashed', ', '.join(job.id for job in jobs))
			run.fail(JobFailedError(f'the job failed inside the pipeline: {type(exc).__name__}: {exc}'))
