"""What the queue holds and the worker runs: a generation job (job.py) or an upscale (upscale_job.py). Their shared
part: id, priority, state, the event channel, and cancelling."""

import threading
import time
import uuid
from datetime import UTC, datetime

from diffusiond.server.errors import DiffusiondError, JobCancelledError
from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import Claim
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.schemas import JobState, Stage


class Work:
	def __init__(
		self,
		channel: EventChannel,
		priority: bool = False,
		job_id: str | None = None,
		created_at: datetime | None = None,
	) -> None:
		"""`job_id`, `created_at`: a job taken back from the store at start-up keeps its own."""
		self.id = job_id or str(uuid.uuid4())
		self.priority = priority  # queued ahead of every job without it
		self.keep_running = False  # its caller going away does not cancel it (and a shutdown leaves it queued)
		self.channel = channel
		self.created_at = created_at or datetime.now(UTC)
		self.submitted = time.monotonic()
		self.state = JobState.QUEUED
		self.step = 0
		self.stage: Stage | None = None  # while running
		self.cancel_requested = threading.Event()
		self.finish_early = threading.Event()  # deliver the image as it is at the next step (CancelJob)
		self.ended = threading.Event()  # set by the worker once the job's final event is out
		self.cancel_error: DiffusiondError = JobCancelledError(f'job {self.id} was cancelled')
		self.claim: Claim | None = None  # its run here, once the store counted its start (fences its end)

	def request_cancel(self, error: DiffusiondError) -> None:
		if not self.cancel_requested.is_set():
			self.cancel_error = error
			self.cancel_requested.set()

	@property
	def finished(self) -> bool:
		return self.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

	def info(self, position: int) -> JobInfo:
		raise NotImplementedError
