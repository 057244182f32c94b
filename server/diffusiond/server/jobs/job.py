"""A job: its validated spec, its state and its event channel."""

import threading
import time
import uuid
from datetime import UTC, datetime

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.errors import DiffusiondError, JobCancelledError
from diffusiond.server.events import JobInfo
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.schemas import JobSpec, JobState, Stage


class Job:
	def __init__(self, spec: JobSpec, model: ModelInfo, channel: EventChannel, priority: bool = False) -> None:
		self.id = str(uuid.uuid4())
		self.spec = spec
		self.priority = priority  # queued ahead of every job without it
		self.model = model
		self.channel = channel
		self.created_at = datetime.now(UTC)
		self.submitted = time.monotonic()
		self.state = JobState.QUEUED
		self.step = 0
		self.stage: Stage | None = None  # while running
		self.stage_start = 0  # the step a denoising stage started after
		self.stage_steps = 0
		self.notices: list[str] = []  # what the engine did differently, for `completed`
		self.cancel_requested = threading.Event()
		self.finish_early = threading.Event()  # deliver the image as it is at the next step (CancelJob)
		self.ended = threading.Event()  # set by the worker once the job's final event is out
		self.cancel_error: DiffusiondError = JobCancelledError(f'job {self.id} was cancelled')

	def request_cancel(self, error: DiffusiondError) -> None:
		if not self.cancel_requested.is_set():
			self.cancel_error = error
			self.cancel_requested.set()

	@property
	def finished(self) -> bool:
		return self.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

	def info(self, position: int) -> JobInfo:
		return JobInfo(
			job_id=self.id,
			state=self.state,
			position=position,
			model=self.spec.model,
			prompt=self.spec.prompt,
			width=self.spec.width,
			height=self.spec.height,
			steps=self.spec.steps,
			num_images=len(self.spec.seeds),
			step=self.step,
			total_steps=self.spec.progress_steps,
			created_at=self.created_at,
			loras=self.spec.loras,
			styles=self.spec.styles,
			stage=self.stage,
		)
