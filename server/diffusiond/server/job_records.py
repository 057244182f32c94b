"""Jobs as the store keeps them (store/job_repo.py) and the journal writes them (jobs/journal.py)."""

from datetime import UTC, datetime

from pydantic import BaseModel

from diffusiond.server.errors import DiffusiondError
from diffusiond.server.events import JobInfo
from diffusiond.server.schemas import JobState

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class JobEnd(BaseModel):
	"""How a job ended: its final state, the reason (an error's, '' for a success) and the message."""

	state: JobState
	reason: str = ''
	error: str = ''
	at: datetime


def job_end(state: JobState, error: DiffusiondError | None) -> JobEnd:
	"""A job's end now, with the error that ended it (None for a success)."""
	return JobEnd(
		state=state,
		reason=error.reason if error is not None else '',
		error=error.message if error is not None else '',
		at=datetime.now(UTC),
	)


class StoredJob(BaseModel):
	id: str
	node: str
	state: JobState
	priority: bool
	keep_running: bool
	params: str  # GenerateParams JSON (seed fixed)
	info: JobInfo  # as accepted
	attempts: int
	created_at: datetime
	deadline_at: datetime | None = None
	finished_at: datetime | None = None
	reason: str = ''
	error: str = ''
