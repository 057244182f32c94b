"""Where a job is, for the services that name one (ListJobs, WatchJob, CancelJob, CancelQueuedJobs): queued or
running in this node's queue, queued or running on another node of a shared queue (cluster/), or ended in the
store, also before a restart (journal.py)."""

from diffusiond.server.cluster.cluster import Cluster
from diffusiond.server.errors import JobFinishedError, JobNotFoundError
from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import ACTIVE_STATES
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import JobState
from diffusiond.server.store.job_repo import JobRepository


class JobDirectory:
	def __init__(self, queue: JobQueue, repo: JobRepository | None, recent: int) -> None:
		self._queue = queue
		self._repo = repo  # None: the queue in memory only
		self._recent = recent  # how many finished jobs a listing reaches
		self.cluster: Cluster | None = None  # the shared queue, when this node is part of one
		self.node = ''  # this daemon's node id (the one running its running jobs)

	async def listing(self, states: list[JobState], include_finished: bool, limit: int) -> list[JobInfo]:
		"""ListJobs: the running and queued jobs (this node's, then the other nodes'), then (include_finished, or
		a final state asked for) up to `limit` finished ones from the store, the latest first."""
		active = [
			info.model_copy(update={'node': self.node}) if info.position == 0 else info
			for info in self._queue.snapshot()
		]
		if self.cluster is not None:
			active += await self.cluster.listing({info.job_id for info in active}, limit)
		active = [info for info in active if not states or info.state in states]
		final = [state for state in states if state not in ACTIVE_STATES]
		if self._repo is None or (states and not final) or not (include_finished or final):
			return active
		listed = {info.job_id for info in active}
		found = await self._repo.finished(final, min(limit, self._recent))
		return active + [stored.info for stored in found if stored.id not in listed]

	async def cancel(self, job_id: str, finish_early: bool = False) -> JobState:
		"""CancelJob: the job's state before the cancel (queue.cancel); a job that ended before a restart is
		JOB_ALREADY_FINISHED, as one that ended since."""
		try:
			return self._queue.cancel(job_id, finish_early=finish_early)
		except JobNotFoundError:
			if self.cluster is not None and (state := await self.cluster.cancel(job_id, finish_early)) is not None:
				return state
			await self.find(job_id)  # raises JOB_ALREADY_FINISHED for a job the store has ended
			raise

	async def cancel_queued(self) -> list[str]:
		"""CancelQueuedJobs: this node's queued jobs, then the other nodes'."""
		dropped = self._queue.cancel_queued()
		if self.cluster is not None:
			dropped += await self.cluster.cancel_queued(self._queue.queued_ids() | set(dropped))
		return dropped

	async def find(self, job_id: str) -> Work:
		"""The queued or running job `job_id`; JOB_ALREADY_FINISHED also for a job that ended before a restart."""
		try:
			return self._queue.find(job_id)
		except JobNotFoundError:
			if self.cluster is not None and (remote := await self.cluster.find(job_id)) is not None:
				return remote
			stored = await self._repo.get(job_id) if self._repo is not None else None
			if stored is None or stored.state in ACTIVE_STATES:
				raise
			raise JobFinishedError(
				f'job {job_id} already finished ({stored.state.value}{", " + stored.reason if stored.reason else ""}); '
				f'its images are in history (GetGeneration {job_id})'
			) from None
