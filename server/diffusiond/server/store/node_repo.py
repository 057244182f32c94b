"""The nodes table: a daemon joins at start (its epoch one higher than its last run's), renews its lease with
each heartbeat, and leaves on a clean stop. A heartbeat from a stale epoch changes nothing and says so."""

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.node_records import NodeRecord, NodeStatus
from diffusiond.server.store.tables import NodeRow

SERVING, STOPPED, LOST = 'serving', 'stopped', 'lost'  # lost: its lease lapsed and another node took over


def _record(row: NodeRow) -> NodeRecord:
	return NodeRecord(
		id=row.id,
		address=row.address,
		device=row.device,
		epoch=row.epoch,
		serving=row.state == SERVING,
		status=NodeStatus(
			queue_depth=row.queue_depth, busy=row.busy, loaded=list(row.loaded or []), models=list(row.models or [])
		),
		started_at=row.started_at,
		heartbeat_at=row.heartbeat_at,
	)


class NodeRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	async def join(self, node: str, address: str, device: str) -> int:
		"""Registers `node` as serving; returns its new epoch."""
		now = datetime.now(UTC)
		async with self._sessions.begin() as session:
			row = await session.get(NodeRow, node, with_for_update=True)
			if row is None:
				row = NodeRow(id=node, epoch=0, queue_depth=0, busy=False, loaded=[], models=[])
				session.add(row)
			row.epoch += 1
			row.address, row.device, row.state = address, device, SERVING
			row.started_at = row.heartbeat_at = now
			return row.epoch

	async def beat(self, node: str, epoch: int, status: NodeStatus) -> bool:
		"""Renews the lease; False when another start of this node took it over (a newer epoch), or another node took
		over its jobs (its lease had lapsed)."""
		async with self._sessions.begin() as session:
			result = await session.execute(
				update(NodeRow)
				.where(NodeRow.id == node, NodeRow.epoch == epoch, NodeRow.state != LOST)
				.values(
					heartbeat_at=datetime.now(UTC),
					state=SERVING,
					queue_depth=status.queue_depth,
					busy=status.busy,
					loaded=status.loaded,
					models=status.models,
				)
				.returning(NodeRow.id)
			)
			return result.scalar_one_or_none() is not None

	async def lost(self, node: str) -> bool:
		"""Whether another node took `node` over (its lease had lapsed)."""
		async with self._sessions() as session:
			return await session.scalar(select(NodeRow.state).where(NodeRow.id == node)) == LOST

	async def leave(self, node: str, epoch: int) -> None:
		async with self._sessions.begin() as session:
			await session.execute(
				update(NodeRow)
				.where(NodeRow.id == node, NodeRow.epoch == epoch)
				.values(state=STOPPED, heartbeat_at=datetime.now(UTC), busy=False, queue_depth=0, loaded=[])
			)

	async def all(self) -> list[NodeRecord]:
		async with self._sessions() as session:
			return [_record(row) for row in await session.scalars(select(NodeRow).order_by(NodeRow.id))]
