"""The LoRA catalog table: rows in, pydantic LoraRecords out."""

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.catalog.files import FileHashes
from diffusiond.server.catalog.lora_probe import LoraProbe
from diffusiond.server.catalog.lora_schemas import LoraChanges, LoraRecord
from diffusiond.server.catalog.schemas import FileStamp, ModelBase
from diffusiond.server.errors import LoraNotFoundError
from diffusiond.server.store.file_repo import FileRepository, NewEntry
from diffusiond.server.store.lora_rows import apply_lora_probe, lora_of
from diffusiond.server.store.tables import LoraRow


def _missing(lora_id: str) -> LoraNotFoundError:
	return LoraNotFoundError(f'LoRA {lora_id} was removed meanwhile', metadata={'lora': lora_id})


def apply_lora_changes(row: LoraRow, changes: LoraChanges) -> bool:
	"""Sets what `changes` sets; whether anything changed."""
	before = (row.display_name, list(row.tags), row.default_weight, row.enabled, row.trigger_words, row.note)
	for field in ('display_name', 'tags', 'default_weight', 'enabled', 'note'):
		value = getattr(changes, field)
		if value is not None:
			setattr(row, field, value)
	if changes.reset_triggers:
		row.trigger_words = None
	elif changes.trigger_words is not None:
		row.trigger_words = changes.trigger_words
	return before != (row.display_name, list(row.tags), row.default_weight, row.enabled, row.trigger_words, row.note)


class LoraRepository(FileRepository[LoraRow, LoraRecord, LoraProbe, LoraChanges]):
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		super().__init__(sessions, LoraRow, lora_of, _missing)

	def _new_row(self, new: NewEntry[LoraProbe]) -> LoraRow:
		row = LoraRow(id=new.id, name=new.name, display_name='', tags=[], note='', added_at=new.added_at, hidden=False)
		row.enabled, row.default_weight = True, 1.0
		return row

	def _take_probe(self, row: LoraRow, stamp: FileStamp, probe: LoraProbe) -> None:
		apply_lora_probe(row, stamp, probe)

	def _take_changes(self, row: LoraRow, changes: LoraChanges) -> None:
		apply_lora_changes(row, changes)

	def _hashed(self, record: LoraRecord) -> bool:
		return bool(record.addnet_hash)

	def _hash_prefix(self, prefix: str) -> ColumnElement[bool]:
		"""A1111 names LoRAs by a prefix of the addnet hash; the sha256 works too."""
		return or_(
			LoraRow.addnet_hash.startswith(prefix, autoescape=True), LoraRow.sha256.startswith(prefix, autoescape=True)
		)

	def _hash_values(self, hashes: FileHashes) -> dict[str, str]:
		return {'sha256': hashes.sha256, 'addnet_hash': hashes.addnet}

	async def of_base(self, base: ModelBase | None) -> list[LoraRecord]:
		"""The listed LoRAs (by name), of one base or all."""
		query = select(LoraRow).where(LoraRow.hidden.is_(False)).order_by(LoraRow.name)
		if base is not None:
			query = query.where(LoraRow.base == base.value)
		async with self._sessions() as session:
			return [lora_of(row) for row in await session.scalars(query)]
