"""A job this node follows while another node runs it (a WatchJob or CancelJob for it, cluster/feeds.py)."""

from diffusiond.server.events import JobInfo
from diffusiond.server.job_records import StoredJob
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.work import Work


class RemoteWork(Work):
	def __init__(self, stored: StoredJob, channel: EventChannel) -> None:
		super().__init__(channel, stored.priority, stored.id, stored.created_at)
		self.state = stored.state
		self._info = stored.info
		channel.unsubscribe(channel.primary)  # its readers subscribe (WatchJob)

	def info(self, position: int) -> JobInfo:
		return self._info.model_copy(update={'state': self.state, 'position': position, 'step': self.step})
