"""A job for a model this daemon's catalog lacks but another serving node has (each node keeps the catalog of its own
folders; the heartbeat publishes the models a node can run). It is accepted here, its request checked by the rules
that need no model, and written to the shared queue for the nodes that have the model to claim (stealer.py); this
node follows it like any job another node runs (feeds.py), so its caller's stream is the one a local job gives. The
node that claims it checks the rest; a request it finds wrong ends the job with that error for the caller.

A model that only nodes not serving now have is refused at once with MODEL_NOT_SERVED; a model no node has stays
MODEL_NOT_FOUND."""

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from diffusiond.server.cluster.feeds import Feeds
from diffusiond.server.cluster.remote import RemoteWork
from diffusiond.server.errors import ModelNotFoundError, ModelNotServedError
from diffusiond.server.events import JobInfo, QueuedEvent
from diffusiond.server.job_records import StoredJob
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.node_records import NodeRecord
from diffusiond.server.schemas import GenerateParams, JobState
from diffusiond.server.store.job_repo import JobRepository
from diffusiond.server.store.node_repo import NodeRepository

_RANDOM_SEED_BITS = 32  # as jobs/validation.py: the seed is fixed here, so a run elsewhere (or again) keeps it
_LOOK_AHEAD = 10_000  # queued jobs counted for the queued event's position


class Forwarder:
	def __init__(self, repo: JobRepository, nodes: NodeRepository, feeds: Feeds, lease_s: float) -> None:
		self._repo = repo
		self._nodes = nodes
		self._feeds = feeds
		self._lease_s = lease_s

	def _serving(self, node: NodeRecord, now: datetime) -> bool:
		return node.serving and node.heartbeat_at >= now - timedelta(seconds=self._lease_s)

	async def check_served(self, model: str, missing: ModelNotFoundError, here: str) -> None:
		"""Returns when a serving node other than `here` has `model`; else raises why not."""
		now = datetime.now(UTC)
		holders = [node for node in await self._nodes.all() if node.id != here and model in node.status.models]
		if any(self._serving(node, now) for node in holders):
			return
		if not holders:
			raise missing
		names = ', '.join(sorted(node.id for node in holders))
		raise ModelNotServedError(
			f'model {model!r} is not on this daemon, and the nodes that have it ({names}) are not serving now; '
			'send the job again once one of them is back, or add the model to this daemon',
			metadata={'model': model, 'nodes': names},
		)

	async def forward(
		self, params: GenerateParams, deadline_s: float | None, seq: int, here: str, loop: asyncio.AbstractEventLoop
	) -> RemoteWork:
		"""Writes the job to the shared queue and follows it for its caller (the returned work's channel)."""
		seed = params.seed if params.seed is not None else secrets.randbits(_RANDOM_SEED_BITS)
		fixed = params.model_copy(update={'seed': seed})
		created, job_id = datetime.now(UTC), str(uuid.uuid4())
		stored = StoredJob(
			id=job_id,
			node=here,
			state=JobState.QUEUED,
			priority=params.priority,
			keep_running=params.keep_running,
			params=fixed.model_dump_json(),
			info=_info(job_id, params, created),
			attempts=0,
			model=params.model,
			created_at=created,
			deadline_at=created + timedelta(seconds=deadline_s) if deadline_s is not None else None,
			forwarded=True,
		)
		work = RemoteWork(stored, EventChannel(loop), caller=True)
		await self._repo.add(stored, seq)
		queued = await self._repo.queued(_LOOK_AHEAD)
		position = next((index + 1 for index, job in enumerate(queued) if job.id == stored.id), len(queued))
		work.channel.put(QueuedEvent(position=position, queue_length=len(queued)))
		await self._feeds.follow(work)
		work.state = JobState.QUEUED  # until a node that has the model starts it (its started event)
		return work


def _info(job_id: str, params: GenerateParams, created: datetime) -> JobInfo:
	"""What ListJobs shows of the job before a node with its model resolves it (unset sizes and steps: 0)."""
	return JobInfo(
		job_id=job_id,
		state=JobState.QUEUED,
		position=0,
		model=params.model,
		prompt=params.prompt,
		width=params.width or 0,
		height=params.height or 0,
		steps=params.steps or 0,
		num_images=params.num_images or 1,
		step=0,
		total_steps=params.steps or 0,
		created_at=created,
		styles=params.styles,
	)
