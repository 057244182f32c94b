"""Running one pipeline call for its jobs (one, or a batch), on the worker thread: events, encoding, outcomes.

Each job of a batch keeps its own stream: its own started/progress/preview/image events, its own record
and timings. Cancelling one job of a batch ends its stream at the next step and drops its images; the call
goes on for the others and stops only when every job in it is cancelled. How each job ended goes to the
recorder (loop side), which writes history and then ends the stream; the worker never waits for it.
"""

import logging
import time

from PIL import Image

from diffusiond.server.errors import DiffusiondError
from diffusiond.server.events import ImageEvent, JobTimings, PreviewEvent, ProgressEvent, StageEvent, StartedEvent
from diffusiond.server.jobs.encode import encode_image
from diffusiond.server.jobs.engine_api import Engine, PreviewHook, RunOutput, StageHook, StepHook
from diffusiond.server.jobs.infotext import image_metadata
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.recorder import Recorder
from diffusiond.server.prompting.report import report
from diffusiond.server.schemas import JobState, Stage

log = logging.getLogger(__name__)


def _progress(job: Job, step: int, total: int, elapsed: float) -> ProgressEvent:
	"""One step's progress: overall, and within the denoising stage it belongs to (a hires fix has two)."""
	stage = job.stage if job.stage is not None and job.stage.denoises else Stage.DENOISING
	start, steps = (job.stage_start, job.stage_steps) if stage is job.stage and job.stage_steps else (0, total)
	return ProgressEvent(
		step=step,
		total_steps=total,
		elapsed_s=elapsed,
		eta_s=elapsed / step * (total - step),
		stage=stage,
		stage_step=step - start,
		stage_steps=steps,
	)


class AllCancelled(Exception):
	"""Raised inside the step callback once every job of the call is cancelled (skips the rest and the decode)."""


class BatchRun:
	def __init__(self, jobs: list[Job], engine: Engine, recorder: Recorder, png_level: int) -> None:
		self._jobs = jobs
		self._engine = engine
		self._recorder = recorder
		self._png_level = png_level
		self.work_s = 0.0  # from the first step to the last image encoded
		self.finished_early = False  # the call stopped early because its jobs asked (CancelJob finish_early)

	def _end(self, job: Job, state: JobState, error: DiffusiondError) -> None:
		"""Ends `job` without images (the recorder drops its record before its stream ends)."""
		job.state = state
		self._recorder.ended(job, error)

	def _live(self) -> list[Job]:
		"""The jobs still wanted; a job whose cancel was requested is ended here (once)."""
		for job in self._jobs:
			if job.cancel_requested.is_set() and not job.finished:
				log.info('job %s cancelled at step %d: %s', job.id, job.step, job.cancel_error.message)
				self._end(job, JobState.CANCELLED, job.cancel_error)
		live = [job for job in self._jobs if not job.finished]
		if not live:
			raise AllCancelled
		return live

	def execute(self) -> None:
		begin = time.monotonic()
		head = self._jobs[0]
		for job in self._live():
			job.stage = Stage.LOADING
		self._engine.load(head.model)
		scheduler = self._engine.prepare(head.spec)
		savers = tuple(self._engine.plan([job.spec for job in self._jobs]))
		load_s = time.monotonic() - begin
		stats = self._engine.stats()  # once per call: every job of a batch ran on the same device
		for job in self._live():
			self._start(job, scheduler, f'{stats.name} ({stats.dtype})', savers)
		inference_start = time.monotonic()

		def on_stage(stage: Stage, steps: int) -> None:
			elapsed = time.monotonic() - inference_start
			for job in self._live():
				job.stage, job.stage_start, job.stage_steps = stage, job.step, steps
				job.channel.publish(StageEvent(stage=stage, steps=steps, elapsed_s=elapsed))

		def on_step(step: int, total: int) -> bool:
			live = self._live()  # at every timestep: a cancelled job ends at once
			if all(job.finish_early.is_set() for job in live):
				self.finished_early = True
				return True  # every job of the call wants its image as it is now
			if step < 1 or step == live[0].step:
				return False  # a timestep within a step already reported (PNDM's warm-up, Heun's second evaluation)
			elapsed = time.monotonic() - inference_start
			for job in live:
				job.step = step
				job.channel.publish(_progress(job, step, total, elapsed))
			return False

		output = self._call(on_step, on_stage, savers)
		inference_s = time.monotonic() - inference_start
		offset = 0
		for job in self._jobs:
			count = len(job.spec.seeds)
			if not job.finished:
				job.notices = [*job.spec.notices, *output.notices]
				timings = JobTimings(queued_s=begin - job.submitted, load_s=load_s, inference_s=inference_s)
				self._finish(job, output.images[offset : offset + count], scheduler, timings)
			offset += count
		self.work_s = time.monotonic() - inference_start

	def _call(self, on_step: StepHook, on_stage: StageHook, savers: tuple[str, ...]) -> RunOutput:
		hooks: list[PreviewHook | None] = [self._preview_hook(job) for job in self._jobs]
		return self._engine.run([job.spec for job in self._jobs], on_step, hooks, on_stage, savers)

	def _preview_hook(self, job: Job) -> PreviewHook:
		def on_preview(step: int, data: bytes, width: int, height: int) -> None:
			if not job.finished:
				job.channel.publish(PreviewEvent(step=step, data=data, width=width, height=height))

		return on_preview

	def _start(self, job: Job, scheduler: str, device: str, savers: tuple[str, ...]) -> None:
		spec = job.spec
		job.channel.publish(
			StartedEvent(
				model=spec.model,
				prompt=spec.prompt,
				negative_prompt=spec.negative_prompt,
				styles=spec.styles,
				loras=spec.loras,
				seeds=spec.seeds,
				sampler=spec.sampler,
				schedule=spec.schedule,
				scheduler=scheduler,
				memory_savers=list(savers),
				width=spec.width,
				height=spec.height,
				steps=spec.steps,
				prompt_report=report(
					spec.prompt,
					spec.tokens.prompt if spec.tokens else None,
					[lora.id for lora in spec.loras if lora.in_prompt],
				),
				negative_report=report(spec.negative_prompt, spec.tokens.negative if spec.tokens else None),
			)
		)
		self._recorder.started(job, scheduler, device)

	def _finish(self, job: Job, images: list[Image.Image], scheduler: str, timings: JobTimings) -> None:
		spec = job.spec
		encode_start = time.monotonic()
		job.stage = Stage.ENCODING_IMAGE
		job.channel.publish(StageEvent(stage=Stage.ENCODING_IMAGE, elapsed_s=timings.inference_s))
		events = []
		for index, (image, seed) in enumerate(zip(images, spec.seeds, strict=True)):
			metadata = image_metadata(spec, job.model, scheduler, seed, index, job.id, job.created_at)
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
		timings.total_s = end - job.submitted
		job.state = JobState.CANCELLED if self.finished_early else JobState.SUCCEEDED
		self._recorder.finished(job, events, timings)  # recorded before `completed`, on the loop

	def fail(self, error: DiffusiondError) -> None:
		"""Ends every job of the call that has not ended yet with `error`."""
		for job in self._jobs:
			if not job.finished:
				self._end(job, JobState.FAILED, error)
