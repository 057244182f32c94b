"""The LoRA catalog table: rows in, pydantic LoraRecords out."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.catalog.lora_probe import LoraProbe
from diffusiond.server.catalog.lora_schemas import LoraChanges, LoraRecord
from diffusiond.server.catalog.schemas import FileStamp, ModelBase
from diffusiond.server.errors import LoraNotFoundError
from diffusiond.server.store.lora_rows import apply_lora_probe, lora_of
from diffusiond.server.store.tables import LoraRow


class NewLora(BaseModel):
	id: str
	name: str
	stamp: FileStamp
	probe: LoraProbe
	added_at: datetime


class LoraReprobe(BaseModel):
	id: str
	stamp: FileStamp
	probe: LoraProbe


def apply_lora_changes(row: LoraRow, changes: LoraChanges) -> bool:
	"""Sets what `changes` sets; whether anything changed."""
	before = (row.display_name, list(row.tags), row.default_weight, row.enabled, row.trigger_words)
	for field in ('display_name', 'tags', 'default_weight', 'enabled'):
		value = getattr(changes, field)
		if value is not None:
			setattr(row, field, value)
	if changes.reset_triggers:
		row.trigger_words = None
	elif changes.trigger_words is not None:
		row.trigger_words = changes.trigger_words
	return before != (row.display_name, list(row.tags), row.default_weight, row.enabled, row.trigger_words)


class LoraRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	@staticmethod
	async def _row(session: AsyncSession, lora_id: str) -> LoraRow:
		row = await session.get(LoraRow, lora_id)
		if row is None:
			raise LoraNotFoundError(f'LoRA {lora_id} was removed meanwhile', metadata={'lora': lora_id})
		return row

	async def all(self, include_hidden: bool = False, base: ModelBase | None = None) -> list[LoraRecord]:
		query = select(LoraRow).order_by(LoraRow.name)
		if not include_hidden:
			query = query.where(LoraRow.hidden.is_(False))
		if base is not None:
			query = query.where(LoraRow.base == base.value)
		async with self._sessions() as session:
			return [lora_of(row) for row in await session.scalars(query)]

	async def find(self, ref: str, hash_prefix: bool) -> list[LoraRecord]:
		"""By id or name, else by a prefix of the addnet hash or the sha256."""
		visible = select(LoraRow).where(LoraRow.hidden.is_(False))
		async with self._sessions() as session:
			exact = [
				lora_of(row)
				for row in await session.scalars(visible.where(or_(LoraRow.id == ref, LoraRow.name == ref)))
			]
			if exact or not hash_prefix:
				return exact
			prefix = ref.lower()
			matching = visible.where(
				or_(
					LoraRow.addnet_hash.startswith(prefix, autoescape=True),
					LoraRow.sha256.startswith(prefix, autoescape=True),
				)
			)
			return [record for record in map(lora_of, await session.scalars(matching)) if record.addnet_hash]

	async def apply_scan(self, added: list[NewLora], changed: list[LoraReprobe], removed: list[str]) -> None:
		async with self._sessions.begin() as session:
			if removed:
				await session.execute(delete(LoraRow).where(LoraRow.id.in_(removed)))
			for new in added:
				row = LoraRow(id=new.id, name=new.name, display_name='', tags=[], added_at=new.added_at, hidden=False)
				row.enabled, row.default_weight = True, 1.0
				apply_lora_probe(row, new.stamp, new.probe)
				session.add(row)
			for item in changed:
				row = await self._row(session, item.id)
				apply_lora_probe(row, item.stamp, item.probe)
				row.hidden = False

	async def update(self, lora_id: str, changes: LoraChanges) -> None:
		async with self._sessions.begin() as session:
			apply_lora_changes(await self._row(session, lora_id), changes)

	async def set_enabled(self, lora_ids: list[str], enabled: bool) -> None:
		async with self._sessions.begin() as session:
			await session.execute(update(LoraRow).where(LoraRow.id.in_(lora_ids)).values(enabled=enabled))

	async def hide(self, lora_id: str) -> None:
		async with self._sessions.begin() as session:
			(await self._row(session, lora_id)).hidden = True

	async def remove(self, lora_ids: list[str]) -> None:
		async with self._sessions.begin() as session:
			await session.execute(delete(LoraRow).where(LoraRow.id.in_(lora_ids)))

	async def unhide_all(self) -> int:
		async with self._sessions.begin() as session:
			rows = list(await session.scalars(select(LoraRow).where(LoraRow.hidden.is_(True))))
			for row in rows:
				row.hidden = False
			return len(rows)

	async def set_hashes(self, lora_id: str, sha256: str, addnet: str, stamp: FileStamp) -> None:
		values = {
			'sha256': sha256,
			'addnet_hash': addnet,
			'hashed_size': stamp.size_bytes,
			'hashed_mtime_ns': stamp.mtime_ns,
		}
		async with self._sessions.begin() as session:
			await session.execute(update(LoraRow).where(LoraRow.id == lora_id).values(**values))

	async def touch(self, lora_ids: list[str], when: datetime) -> None:
		async with self._sessions.begin() as session:
			await session.execute(update(LoraRow).where(LoraRow.id.in_(lora_ids)).values(last_used_at=when))
