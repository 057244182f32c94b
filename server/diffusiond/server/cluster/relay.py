"""Outgoing: the events of every job that runs on this node, written to the job_events table and announced by
NOTIFY, for the daemons that follow the job from elsewhere (its origin, a WatchJob on another node). A reader
like any other: progress and previews are latest-wins, so a slow database drops intermediate steps, never the
images or the end. A job interrupted by this daemon's shutdown is not over (another node runs it again):
nothing is relayed for that."""

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.cluster.messages import RelayedEvent, relayed, relayed_failure
from diffusiond.server.errors import DiffusiondError, ShutdownCancelledError, ShuttingDownError
from diffusiond.server.jobs.channel import Subscription
from diffusiond.server.jobs.work import Work
from diffusiond.server.store.event_repo import EventRepository

log = logging.getLogger(__name__)

_SETTLE_S = 10.0  # after the drain, for the relays to write the ends of the jobs that ran here


class Relay:
	def __init__(self, repo: EventRepository, node: str) -> None:
		self._repo = repo
		self._node = node
		self._tasks: dict[asyncio.Task[None], Work] = {}

	def follow(self, job: Work) -> None:
		"""Loop-only: relays `job`'s events from now until its end."""
		subscription = job.channel.subscribe()
		task = asyncio.get_running_loop().create_task(self._pump(job, subscription))
		self._tasks[task] = job
		task.add_done_callback(self._forget)

	def _forget(self, task: asyncio.Task[None]) -> None:
		self._tasks.pop(task, None)

	async def _pump(self, job: Work, subscription: Subscription) -> None:
		try:
			async for event in subscription.events():
				await self._write(job.id, relayed(event, self._node))
		except (ShutdownCancelledError, ShuttingDownError):
			pass
		except DiffusiondError as error:
			await self._write(job.id, relayed_failure(error, self._node))
		finally:
			job.channel.unsubscribe(subscription)

	async def _write(self, job_id: str, message: RelayedEvent) -> None:
		try:
			await self._repo.append(job_id, message.model_dump_json())
		except (SQLAlchemyError, DiffusiondError, OSError) as exc:
			log.warning('job %s: an event was not relayed to the other daemons: %s', job_id, exc)

	async def idle(self, settle_s: float = _SETTLE_S) -> None:
		"""After the drain: every job that ran here has ended, so each relay has only its end left to write. A relay
		still waiting after `settle_s` follows a job whose stream never got its end (a defect): it is named in the
		log and stopped, so the shutdown ends (the job's row stays as the store has it, for the reaper)."""
		while self._tasks:
			_, waiting = await asyncio.wait(list(self._tasks), timeout=settle_s)
			for task in waiting:
				job = self._tasks.pop(task)
				log.error(
					'job %s (%s): its relay had no end %.0fs after the drain; stopped without it',
					job.id,
					job.state.name,
					settle_s,
				)
				task.cancel()
			await asyncio.gather(*waiting, return_exceptions=True)
