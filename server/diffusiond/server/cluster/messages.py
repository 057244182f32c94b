"""A job's event as one daemon relays it to the others (a row of the job_events table, cluster/relay.py): exactly
one field is set. A failure carries the error's reason, so the following daemon raises the same error class."""

from pydantic import BaseModel

from diffusiond.server.errors import DiffusiondError, from_reason
from diffusiond.server.events import (
	CompletedEvent,
	ImageEvent,
	JobEvent,
	PreviewEvent,
	ProgressEvent,
	QueuedEvent,
	StageEvent,
	StartedEvent,
)


class Failure(BaseModel):
	reason: str
	message: str


class RelayedEvent(BaseModel):
	queued: QueuedEvent | None = None
	started: StartedEvent | None = None
	progress: ProgressEvent | None = None
	stage: StageEvent | None = None
	preview: PreviewEvent | None = None
	image: ImageEvent | None = None
	completed: CompletedEvent | None = None
	failed: Failure | None = None
	runner: str = ''  # the node that ran the job

	def event(self) -> JobEvent | None:
		"""The job event (None for a failure)."""
		found = (self.queued, self.started, self.progress, self.stage, self.preview, self.image, self.completed)
		return next((event for event in found if event is not None), None)

	def error(self) -> DiffusiondError | None:
		return from_reason(self.failed.reason, self.failed.message) if self.failed is not None else None


_FIELDS: dict[type, str] = {
	QueuedEvent: 'queued',
	StartedEvent: 'started',
	ProgressEvent: 'progress',
	StageEvent: 'stage',
	PreviewEvent: 'preview',
	ImageEvent: 'image',
	CompletedEvent: 'completed',
}


def relayed(event: JobEvent, runner: str) -> RelayedEvent:
	return RelayedEvent.model_validate({_FIELDS[type(event)]: event, 'runner': runner})


def relayed_failure(error: DiffusiondError, runner: str) -> RelayedEvent:
	return RelayedEvent(failed=Failure(reason=error.reason, message=error.message), runner=runner)
