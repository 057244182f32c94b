"""The model catalog table: rows in, pydantic ModelRecords out."""

from sqlalchemy import ColumnElement, func, select
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
from diffusiond.server.store.file_repo import FileRepository, NewEntry, Reprobe
from diffusiond.server.store.rows import apply_probe, record_of
from diffusiond.server.store.tables import ModelRow


def _missing(record_id: str) -> ModelNotFoundError:
	return ModelNotFoundError(f'model {record_id} was removed meanwhile', metadata={'model': record_id})


ORDERS = {
	'name': (ModelRow.name,),
	'last_used': (ModelRow.last_used_at.desc().nulls_last(), ModelRow.name),
}


def _user_fields(row: ModelRow) -> tuple[object, ...]:
	defaults = (row.default_sampler, row.default_steps, row.default_guidance, row.default_clip_skip, row.default_vae)
	speed = (row.default_schedule, row.default_deep_cache, row.default_token_merging, row.default_fast_decode)
	return (row.display_name, list(row.tags), *defaults, *speed)


def apply_model_changes(row: ModelRow, changes: ModelChanges) -> bool:
	"""Sets what `changes` sets; whether anything changed."""
	before = _user_fields(row)
	if changes.display_name is not None:
		row.display_name = changes.display_name
	if changes.tags is not None:
		row.tags = changes.tags
	if changes.defaults is not None:
		row.default_sampler = changes.defaults.sampler.name if changes.defaults.sampler else None
		row.default_steps = changes.defaults.steps
		row.default_guidance = changes.defaults.guidance_scale
		row.default_clip_skip = changes.defaults.clip_skip
		row.default_vae = changes.defaults.vae
		row.default_schedule = changes.defaults.schedule.name if changes.defaults.schedule else None
		row.default_deep_cache = changes.defaults.deep_cache
		row.default_token_merging = changes.defaults.token_merging
		row.default_fast_decode = changes.defaults.fast_decode
	return before != _user_fields(row)


class ModelRepository(FileRepository[ModelRow, ModelRecord, Probe, ModelChanges]):
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		super().__init__(sessions, ModelRow, record_of, _missing)

	def _new_row(self, new: NewEntry[Probe]) -> ModelRow:
		return ModelRow(id=new.id, name=new.name, display_name='', tags=[], added_at=new.added_at, hidden=False)

	def _take_probe(self, row: ModelRow, stamp: FileStamp, probe: Probe) -> None:
		apply_probe(row, stamp, probe)

	def _take_changes(self, row: ModelRow, changes: ModelChanges) -> None:
		apply_model_changes(row, changes)

	def _hashed(self, record: ModelRecord) -> bool:
		return bool(record.sha256)

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

	async def reprobe(self, record_id: str, stamp: FileStamp, probe: Probe) -> None:
		await self.apply_scan([], [Reprobe[Probe](id=record_id, stamp=stamp, probe=probe)], [])
