"""Incoming: the jobs this node follows while another node runs them (its own jobs that another node claimed, a
WatchJob for another node's job). A NOTIFY naming the job makes the feed read its new rows from job_events, in
order, into the job's channel: the caller's stream goes on as if the job ran here."""

import asyncio
import logging

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.cluster.messages import RelayedEvent
from diffusiond.server.errors import DiffusiondError, JobCancelledError
from diffusiond.server.events import CompletedEvent, ProgressEvent, StartedEvent
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import JobState
from diffusiond.server.store.event_repo import EventRepository

log = logging.getLogger(__name__)


class Feeds:
	def __init__(self, repo: EventRepository) -> None:
		self._repo = repo
		self._works: dict[str, Work] = {}  # job id → the one object that stands for it here
		self._last: dict[str, int] = {}  # job id → the last event row read
		self._locks: dict[str, asyncio.Lock] = {}

	def get(self, job_id: str) -> Work | None:
		return self._works.get(job_id)

	async def follow(self, work: Work) -> Work:
		"""Follows `work` (a job already followed here keeps its object, which is returned)."""
		if work.id in self._works:
			return self._works[work.id]
		self._works[work.id], self._last[work.id], self._locks[work.id] = work, 0, asyncio.Lock()
		work.state = JobState.RUNNING if work.state is JobState.QUEUED else work.state
		await self.read(work.id)
		return work

	async def read(self, job_id: str) -> None:
		"""Reads the job's new events (a NOTIFY named it)."""
		lock = self._locks.get(job_id)
		if lock is None:
			return
		async with lock:
			try:
				rows = await self._repo.since(job_id, self._last.get(job_id, 0))
			except (SQLAlchemyError, DiffusiondError, OSError) as exc:
				log.warning('job %s: its relayed events could not be read: %s', job_id, exc)
				return
			for row in rows:
				work = self._works.get(job_id)
				if work is None:
					return
				self._last[job_id] = row.id
				try:
					message = RelayedEvent.model_validate_json(row.body)
				except ValidationError:  # written by a newer daemon: what this one cannot read is skipped
					log.warning('job %s: a relayed event could not be read: %.200s', job_id, row.body)
					continue
				self._apply(work, message)

	def _apply(self, work: Work, message: RelayedEvent) -> None:
		error = message.error()
		if error is not None:
			self.fail(work.id, error)
			return
		event = message.event()
		if isinstance(event, StartedEvent):
			work.state, work.step = JobState.RUNNING, 0
		elif isinstance(event, ProgressEvent):
			work.step, work.stage = event.step, event.stage
		if event is not None:
			work.channel.put(event)
		if isinstance(event, CompletedEvent):
			work.state = event.state
			self._end(work)

	def fail(self, job_id: str, error: DiffusiondError) -> None:
		"""Ends the followed job with `error` (its run failed, or it was cancelled while queued)."""
		work = self._works.get(job_id)
		if work is None:
			return
		work.state = JobState.CANCELLED if isinstance(error, JobCancelledError) else JobState.FAILED
		work.channel.put_error(error)
		self._end(work)

	def _end(self, work: Work) -> None:
		self._works.pop(work.id, None)
		self._last.pop(work.id, None)
		self._locks.pop(work.id, None)
		work.ended.set()

	def following(self) -> list[Work]:
		return list(self._works.values())
