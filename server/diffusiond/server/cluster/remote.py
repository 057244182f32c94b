"""A job this node follows while another node runs it (a WatchJob or CancelJob for it, a job for a model only another
node has: cluster/feeds.py, cluster/forward.py)."""

from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import StoredJob
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.work import Work


class RemoteWork(Work):
	def __init__(self, stored: StoredJob, channel: EventChannel, caller: bool = False) -> None:
		"""`caller`: the job was accepted here for another node to run (forward.py), and its caller reads the
		channel's primary subscription; otherwise its readers subscribe (WatchJob)."""
		super().__init__(channel, stored.priority, stored.id, stored.created_at)
		self.state = stored.state
		self.keep_running = stored.keep_running
		self._info = stored.info
		if not caller:
			channel.unsubscribe(channel.primary)

	def info(self, position: int) -> JobInfo:
		return self._info.model_copy(update={'state': self.state, 'position': position, 'step': self.step})
