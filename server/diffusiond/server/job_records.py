"""Jobs as the store keeps them (store/job_repo.py) and the journal writes them (jobs/journal.py)."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from diffusiond.server.errors import DiffusiondError
from diffusiond.server.events import JobInfo
from diffusiond.server.schemas import JobState

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
MAX_ATTEMPTS = 2  # a job that was running when its daemon died runs once more


class Claim(BaseModel):
	"""Which run of a job this is: the node that claimed it, that node's epoch, and the job's attempt number. The
	job's end is written only while its row still says so (fencing: a node cut off from the database whose job
	was taken over cannot end it)."""

	runner: str
	epoch: int
	attempt: int


class JobEnd(BaseModel):
	"""How a job ended: its final state, the reason (an error's, '' for a success) and the message."""

	state: JobState
	reason: str = ''
	error: str = ''
	at: datetime
	claim: Claim | None = None  # the run that ends it (None: a job that never ran, or no store row)


def job_end(state: JobState, error: DiffusiondError | None, claim: Claim | None = None) -> JobEnd:
	"""A job's end now, with the error that ended it (None for a success)."""
	return JobEnd(
		state=state,
		reason=error.reason if error is not None else '',
		error=error.message if error is not None else '',
		at=datetime.now(UTC),
		claim=claim,
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
	model: str = ''
	runner: str = ''  # the node running it (shared queue), '' while queued
	forwarded: bool = False  # accepted by a node that lacks its model, for the nodes that have it (cluster/forward.py)


class Claimed(BaseModel):
	"""What a node's claim of the jobs it took from its queue found (store/job_repo.py `running`)."""

	claims: dict[str, Claim]  # job id → its run here
	taken: list[str]  # claimed by another node meanwhile, or already ended there: not run here


class Control(BaseModel):
	"""A message between the daemons on one database (PostgreSQL NOTIFY on `diffusiond_control`, cluster/bus.py):
	`claimed` (a node took the job: its origin stops queueing it), `cancel` (to the node running it), `dropped`
	(a queued job was cancelled in the store: its origin and watchers end it), `queued` (wakes idle nodes)."""

	kind: Literal['claimed', 'cancel', 'dropped', 'queued']
	job_id: str = ''
	runner: str = ''
	finish_early: bool = False
	reason: str = ''
	message: str = ''
