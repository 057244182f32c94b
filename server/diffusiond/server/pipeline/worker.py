"""The one worker thread: takes jobs from the queue and runs them on the backend, one at a time."""

import logging
import threading
import time

from diffusiond.server.errors import DiffusiondError, JobFailedError
from diffusiond.server.history.writer import HistoryWriter
from diffusiond.server.pipeline.backend import Backend
from diffusiond.server.pipeline.encode import encode_image
from diffusiond.server.pipeline.estimate import Estimator
from diffusiond.server.pipeline.infotext import image_metadata
from diffusiond.server.pipeline.job import Job
from diffusiond.server.pipeline.queue import JobQueue
from diffusiond.server.schemas import (
	CompletedEvent,
	ImageEvent,
	JobState,
	JobTimings,
	PreviewEvent,
	ProgressEvent,
	StartedEvent,
)

log = logging.getLogger(__name__)


class _Cancelled(Exception):
	"""Raised inside the step callback to stop a cancelled job (skips the rest and the VAE decode)."""


class Worker:
	def __init__(self, queue: JobQueue, backend: Backend, estimator: Estimator, png_level: int = 4) -> None:
		self._png_level = png_level
		self._queue = queue
		self._backend = backend
		self._estimator = estimator
		self.history: HistoryWriter | None = None  # set by the manager once the event loop runs
		self._thread = threading.Thread(target=self._loop, name='diffusiond-worker', daemon=True)

	def start(self) -> None:
		self._thread.start()

	def join(self, timeout: float | None = None) -> None:
		self._thread.join(timeout)

	def _loop(self) -> None:
		while (item := self._queue.take()) is not None:
			if isinstance(item, Job):
				started = time.monotonic()
				self._run(item)
				self._queue.done(item, time.monotonic() - started)
				item.ended.set()
			else:
				item()

	def _run(self, job: Job) -> None:
		try:
			self._execute(job)
		except _Cancelled:
			job.state = JobState.CANCELLED
			log.info('job %s cancelled at step %d: %s', job.id, job.step, job.cancel_error.message)
			job.channel.fail(job.cancel_error)
		except DiffusiondError as exc:
			job.state = JobState.FAILED
			log.warning('job %s failed: %s', job.id, exc.message)
			job.channel.fail(exc)
		except Exception as exc:
			job.state = JobState.FAILED
			log.exception('job %s crashed', job.id)
			job.channel.fail(JobFailedError(f'job {job.id} failed inside the pipeline: {type(exc).__name__}: {exc}'))
		finally:
			if job.state is not JobState.SUCCEEDED and self.history is not None:
				self.history.discard(job)

	def _execute(self, job: Job) -> None:
		spec = job.spec
		begin = time.monotonic()
		timings = JobTimings(queued_s=begin - job.submitted)
		self._check(job)
		self._backend.load(job.model)
		scheduler = self._backend.prepare(spec)
		timings.load_s = time.monotonic() - begin
		self._check(job)
		job.channel.publish(
			StartedEvent(
				model=spec.model,
				prompt=spec.prompt,
				negative_prompt=spec.negative_prompt,
				styles=spec.styles,
				loras=spec.loras,
				seeds=spec.seeds,
				sampler=spec.sampler,
				scheduler=scheduler,
				width=spec.width,
				height=spec.height,
				steps=spec.steps,
			)
		)
		if self.history is not None:
			stats = self._backend.stats()
			self.history.started(job, scheduler, f'{stats.name} ({stats.dtype})')
		inference_start = time.monotonic()

		def on_step(step: int, total: int) -> None:
			job.step = step
			self._check(job)
			elapsed = time.monotonic() - inference_start
			eta = elapsed / step * (total - step)
			job.channel.publish(ProgressEvent(step=step, total_steps=total, elapsed_s=elapsed, eta_s=eta))

		def on_preview(step: int, data: bytes, width: int, height: int) -> None:
			job.channel.publish(PreviewEvent(step=step, data=data, width=width, height=height))

		output = self._backend.run(spec, on_step, on_preview)
		encode_start = time.monotonic()
		timings.inference_s = encode_start - inference_start
		events = []
		for index, (image, seed) in enumerate(zip(output.images, spec.seeds, strict=True)):
			metadata = image_metadata(spec, job.model, scheduler, seed, index, job.id)
			data = encode_image(image, spec.output_format, spec.quality, metadata, self._png_level)
			event = ImageEvent(
				index=index,
				seed=seed,
				data=data,
				mime_type=spec.output_format.value,
				width=image.width,
				height=image.height,
			)
			job.channel.publish(event)
			events.append(event)
		end = time.monotonic()
		timings.encode_s = end - encode_start
		self._estimator.observe(spec, end - inference_start)
		timings.total_s = end - job.submitted
		if self.history is not None:  # recorded before `completed`: a client that then lists history sees the job
			self.history.save(job, events, timings.model_dump())
		job.state = JobState.SUCCEEDED
		job.channel.publish(CompletedEvent(state=JobState.SUCCEEDED, timings=timings))

	@staticmethod
	def _check(job: Job) -> None:
		if job.cancel_requested.is_set():
			raise _Cancelled
