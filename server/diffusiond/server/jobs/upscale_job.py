"""An upscale (UpscaleImage) as a job of the queue: queued and cancelled like a generation, run on the worker one
tile at a time (a progress event per tile), its image streamed and not stored in history."""

import logging
import time

from diffusiond.server.errors import DiffusiondError, JobFailedError
from diffusiond.server.events import (
	CompletedEvent,
	ImageEvent,
	JobInfo,
	JobTimings,
	ProgressEvent,
	StageEvent,
	StartedEvent,
)
from diffusiond.server.images import decode_image
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.encode import encode_image
from diffusiond.server.jobs.engine_api import Engine
from diffusiond.server.jobs.work import Work
from diffusiond.server.samplers import Sampler
from diffusiond.server.schemas import JobState, Stage
from diffusiond.server.tasks.upscale import UpscaleSpec

log = logging.getLogger(__name__)


class UpscaleCancelled(Exception):
	"""Raised from the tile callback once the job is cancelled."""


class UpscaleJob(Work):
	def __init__(self, spec: UpscaleSpec, channel: EventChannel, priority: bool = False) -> None:
		super().__init__(channel, priority)
		self.spec = spec

	def info(self, position: int) -> JobInfo:
		spec = self.spec
		return JobInfo(
			job_id=self.id,
			state=self.state,
			position=position,
			model=spec.upscaler,
			prompt='',
			width=spec.width,
			height=spec.height,
			steps=spec.progress_steps,
			num_images=1,
			step=self.step,
			total_steps=spec.progress_steps,
			created_at=self.created_at,
			stage=self.stage,
		)


def run_upscale(job: UpscaleJob, engine: Engine, png_level: int) -> None:
	"""Worker: runs `job` and ends its stream (image and `completed`, or its error)."""
	try:
		_run(job, engine, png_level)
	except UpscaleCancelled:
		job.state = JobState.CANCELLED
		job.channel.fail(job.cancel_error)
	except DiffusiondError as exc:
		log.warning('upscale %s failed: %s', job.id, exc.message)
		job.state = JobState.FAILED
		job.channel.fail(exc)
	except Exception as exc:
		log.exception('upscale %s crashed', job.id)
		job.state = JobState.FAILED
		job.channel.fail(JobFailedError(f'the upscale failed: {type(exc).__name__}: {exc}'))


def _run(job: UpscaleJob, engine: Engine, png_level: int) -> None:
	spec, begin = job.spec, time.monotonic()
	if job.cancel_requested.is_set():
		raise UpscaleCancelled
	total = spec.progress_steps
	job.stage = Stage.UPSCALING
	job.channel.publish(
		StartedEvent(
			model=spec.upscaler,
			seeds=[],
			sampler=Sampler.UNSPECIFIED,
			scheduler='',
			width=spec.width,
			height=spec.height,
			steps=total,
		)
	)
	job.channel.publish(StageEvent(stage=Stage.UPSCALING, steps=total))

	def on_tile(done: int) -> None:
		if job.cancel_requested.is_set():
			raise UpscaleCancelled
		job.step = done
		elapsed = time.monotonic() - begin
		job.channel.publish(
			ProgressEvent(
				step=done,
				total_steps=total,
				elapsed_s=elapsed,
				eta_s=elapsed / done * (total - done),
				stage=Stage.UPSCALING,
				stage_step=done,
				stage_steps=total,
			)
		)

	source = decode_image(spec.image, spec.source_width * spec.source_height, 'image')  # as checked at intake
	image = engine.upscale(spec, source.convert('RGB'), on_tile)
	inference_s = time.monotonic() - begin
	job.stage = Stage.ENCODING_IMAGE
	job.channel.publish(StageEvent(stage=Stage.ENCODING_IMAGE, elapsed_s=inference_s))
	data = encode_image(image, spec.output_format, spec.quality, None, png_level)
	mime = spec.output_format.value
	job.channel.publish(ImageEvent(index=0, seed=0, data=data, mime_type=mime, width=image.width, height=image.height))
	end = time.monotonic()
	timings = JobTimings(
		queued_s=begin - job.submitted,
		inference_s=inference_s,
		encode_s=end - begin - inference_s,
		total_s=end - job.submitted,
	)
	job.state = JobState.SUCCEEDED
	job.channel.publish(CompletedEvent(state=JobState.SUCCEEDED, timings=timings, stored=False))
