"""Whether this daemon shares its queue with the others on its database, and its part of the shared queue."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.cluster.cluster import Cluster
from diffusiond.server.cluster.reaper import Reaper
from diffusiond.server.cluster.stealer import Stealer
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.settings_groups import ClusterSettings
from diffusiond.server.store.event_repo import EventRepository
from diffusiond.server.store.job_repo import JobRepository
from diffusiond.server.store.node_repo import NodeRepository


def shares_queue(url: str, settings: ClusterSettings) -> bool:
	"""SQLite is one process's: only PostgreSQL is shared."""
	return settings.shared_queue and url.startswith('postgresql')


def build_cluster(
	url: str,
	settings: ClusterSettings,
	sessions: async_sessionmaker[AsyncSession],
	jobs: JobRepository,
	nodes: NodeRepository,
	manager: PipelineManager,
) -> Cluster:
	stealer = Stealer(jobs, manager.queue, manager.rebuild, manager.warm, settings)
	reaper = Reaper(sessions, nodes, settings)
	events = EventRepository(sessions)
	return Cluster(url, jobs, events, manager.queue, stealer, reaper, nodes, settings.lease_s)
