"""The model catalog table: rows in, pydantic ModelRecords out."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.catalog.schemas import (
	FileStamp,
	ModelBase,
	ModelChanges,
	ModelFormat,
	ModelRecord,
	Probe,
)
from diffusiond.server.errors import ModelNotFoundError
from diffusiond.server.store.rows import apply_probe, record_of
from diffusiond.server.store.tables import ModelRow


class NewModel(BaseModel):
	id: str
	name: str
	stamp: FileStamp
	probe: Probe
	added_at: datetime


class Reprobe(BaseModel):
	id: str
	stamp: FileStamp
	probe: Probe


ORDERS = {
	'name': (ModelRow.name,),
	'last_used': (ModelRow.last_used_at.desc().nulls_last(), ModelRow.name),
}


def apply_model_changes(row: ModelRow, changes: ModelChanges) -> bool:
	"""Sets what `changes` sets; whether anything changed."""
	before = (row.display_name, list(row.tags), row.default_sampler, row.default_steps, row.default_guidance)
	if changes.display_name is not None:
		row.display_name = changes.display_name
	if changes.tags is not None:
		row.tags = changes.tags
	if changes.defaults is not None:
		row.default_sampler = changes.defaults.sampler.name if changes.defaults.sampler else None
		row.default_steps = changes.defaults.steps
		row.default_guidance = changes.defaults.guidance_scale
	return before != (row.display_name, list(row.tags), row.default_sampler, row.default_steps, row.default_guidance)


class ModelRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	@staticmethod
	async def _row(session: AsyncSession, record_id: str) -> ModelRow:
		row = await session.get(ModelRow, record_id)
		if row is None:  # removed by a concurrent call (a rescan or a delete)
			raise ModelNotFoundError(f'model {record_id} was removed meanwhile', metadata={'model': record_id})
		return row

	async def all(self, include_hidden: bool = False) -> list[ModelRecord]:
		query = select(ModelRow).order_by(ModelRow.name)
		async with self._sessions() as session:
			rows = await session.scalars(query if include_hidden else query.where(ModelRow.hidden.is_(False)))
			return [record_of(row) for row in rows]

	async def query(
		self,
		*,
		base: ModelBase | None = None,
		format: ModelFormat | None = None,
		ids: list[str] | None = None,
		order: str = 'name',
		offset: int = 0,
		limit: int = 50,
	) -> tuple[list[ModelRecord], int]:
		"""One page of matching models and the number of matches."""
		where: list[ColumnElement[bool]] = [ModelRow.hidden.is_(False)]
		if base is not None:
			where.append(ModelRow.base == base.value)
		if format is not None:
			where.append(ModelRow.format == format.value)
		if ids is not None:
			where.append(ModelRow.id.in_(ids))
		async with self._sessions() as session:
			total = await session.scalar(select(func.count()).select_from(ModelRow).where(*where)) or 0
			rows = await session.scalars(
				select(ModelRow).where(*where).order_by(*ORDERS[order]).offset(offset).limit(limit)
			)
			return [record_of(row) for row in rows], total

	async def find(self, ref: str, hash_prefix: bool = True) -> list[ModelRecord]:
		"""Models whose id or name is `ref`, else whose sha256 starts with it (several = ambiguous)."""
		async with self._sessions() as session:
			visible = select(ModelRow).where(ModelRow.hidden.is_(False))
			exact = await session.scalars(visible.where(or_(ModelRow.id == ref, ModelRow.name == ref)))
			found = [record_of(row) for row in exact]
			if found or not ref or not hash_prefix:
				return found
			prefix = ref.lower()
			rows = await session.scalars(visible.where(ModelRow.sha256.startswith(prefix, autoescape=True)))
			return [record for record in map(record_of, rows) if record.sha256]

	async def apply_scan(self, added: list[NewModel], changed: list[Reprobe], removed: list[str]) -> None:
		"""One rescan's changes in one transaction (a thousand new files cost one commit, not a thousand)."""
		async with self._sessions.begin() as session:
			if removed:
				await session.execute(delete(ModelRow).where(ModelRow.id.in_(removed)))
			for new in added:
				row = ModelRow(id=new.id, name=new.name, display_name='', tags=[], added_at=new.added_at, hidden=False)
				apply_probe(row, new.stamp, new.probe)
				session.add(row)
			for item in changed:
				row = await self._row(session, item.id)
				apply_probe(row, item.stamp, item.probe)
				row.hidden = False  # a replaced file is a new version: list it again

	async def reprobe(self, record_id: str, stamp: FileStamp, probe: Probe) -> None:
		await self.apply_scan([], [Reprobe(id=record_id, stamp=stamp, probe=probe)], [])

	async def remove(self, record_ids: list[str]) -> None:
		async with self._sessions.begin() as session:
			await session.execute(delete(ModelRow).where(ModelRow.id.in_(record_ids)))

	async def hide(self, record_id: str) -> None:
		"""Unregisters a model whose files stay: rescans skip it until its file changes or `unhide_all`."""
		async with self._sessions.begin() as session:
			row = await self._row(session, record_id)
			row.hidden = True

	async def unhide_all(self) -> int:
		async with self._sessions.begin() as session:
			rows = list(await session.scalars(select(ModelRow).where(ModelRow.hidden.is_(True))))
			for row in rows:
				row.hidden = False
			return len(rows)

	async def update(self, record_id: str, changes: ModelChanges) -> None:
		async with self._sessions.begin() as session:
			apply_model_changes(await self._row(session, record_id), changes)

	async def set_hash(self, record_id: str, sha256: str, size_bytes: int, mtime_ns: int) -> None:
		"""Stores a full-file hash for the file as it was (size, mtime) when hashed."""
		values = {'sha256': sha256, 'hashed_size': size_bytes, 'hashed_mtime_ns': mtime_ns}
		async with self._sessions.begin() as session:  # an UPDATE: a row deleted meanwhile is no error
			await session.execute(update(ModelRow).where(ModelRow.id == record_id).values(**values))

	async def touch(self, record_id: str, when: datetime) -> None:
		async with self._sessions.begin() as session:
			await session.execute(update(ModelRow).where(ModelRow.id == record_id).values(last_used_at=when))
