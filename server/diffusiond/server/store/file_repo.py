"""What the catalog tables (models, loras, embeddings, vaes) share: rows of files in a folder, found by id, name or hash, rescanned in one
transaction, hidden when unregistered with their files kept. model_repo.py and lora_repo.py say the rest."""

from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.catalog.asset_schemas import AssetProbe, UpscalerProbe
from diffusiond.server.catalog.files import FileHashes
from diffusiond.server.catalog.lora_probe import LoraProbe
from diffusiond.server.catalog.schemas import FileStamp, Probe
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.store.tables import ControlNetRow, EmbeddingRow, LoraRow, ModelRow, UpscalerRow, VaeRow

RowT = TypeVar('RowT', ModelRow, LoraRow, EmbeddingRow, VaeRow, ControlNetRow, UpscalerRow)
RecordT = TypeVar('RecordT')
ProbeT = TypeVar('ProbeT', Probe, LoraProbe, AssetProbe, UpscalerProbe)
ChangesT = TypeVar('ChangesT', bound=BaseModel)


class NewEntry(BaseModel, Generic[ProbeT]):
	id: str
	name: str
	stamp: FileStamp
	probe: ProbeT
	added_at: datetime


class Reprobe(BaseModel, Generic[ProbeT]):
	id: str
	stamp: FileStamp
	probe: ProbeT


class FileRepository(Generic[RowT, RecordT, ProbeT, ChangesT]):
	"""One catalog table. A specialisation says how a row reads and takes a probe, and which hashes it keeps."""

	def __init__(
		self,
		sessions: async_sessionmaker[AsyncSession],
		table: type[RowT],
		read: Callable[[RowT], RecordT],
		missing: Callable[[str], DiffusiondError],
	) -> None:
		self._sessions = sessions
		self._table: type[RowT] = table
		self._read: Callable[[RowT], RecordT] = read
		self._missing: Callable[[str], DiffusiondError] = (
			missing  # the error for a row removed by a concurrent call (a rescan or a delete)
		)

	def _new_row(self, new: NewEntry[ProbeT]) -> RowT:
		raise NotImplementedError

	def _take_probe(self, row: RowT, stamp: FileStamp, probe: ProbeT) -> None:
		raise NotImplementedError

	def _take_changes(self, row: RowT, changes: ChangesT) -> None:
		raise NotImplementedError

	def _hashed(self, record: RecordT) -> bool:
		"""Whether the record's hashes are current (a file changed since it was hashed shows none)."""
		raise NotImplementedError

	def _hash_prefix(self, prefix: str) -> ColumnElement[bool]:
		"""Rows one of whose hashes starts with `prefix`."""
		return self._table.sha256.startswith(prefix, autoescape=True)

	def _hash_values(self, hashes: FileHashes) -> dict[str, str]:
		return {'sha256': hashes.sha256}

	async def _row(self, session: AsyncSession, record_id: str) -> RowT:
		row = await session.get(self._table, record_id)
		if row is None:
			raise self._missing(record_id)
		return row

	async def all(self, include_hidden: bool = False) -> list[RecordT]:
		query = select(self._table).order_by(self._table.name)
		if not include_hidden:
			query = query.where(self._table.hidden.is_(False))
		async with self._sessions() as session:
			return [self._read(row) for row in await session.scalars(query)]

	async def find(self, ref: str, hash_prefix: bool = True) -> list[RecordT]:
		"""Entries whose id or name is `ref`, else one of whose hashes starts with it (several = ambiguous)."""
		visible = select(self._table).where(self._table.hidden.is_(False))
		async with self._sessions() as session:
			exact = await session.scalars(visible.where(or_(self._table.id == ref, self._table.name == ref)))
			found = [self._read(row) for row in exact]
			if found or not ref or not hash_prefix:
				return found
			rows = await session.scalars(visible.where(self._hash_prefix(ref.lower())))
			return [record for record in map(self._read, rows) if self._hashed(record)]

	async def apply_scan(
		self, added: list[NewEntry[ProbeT]], changed: list[Reprobe[ProbeT]], removed: list[str]
	) -> None:
		"""One rescan's changes in one transaction (a thousand new files cost one commit, not a thousand)."""
		async with self._sessions.begin() as session:
			if removed:
				await session.execute(delete(self._table).where(self._table.id.in_(removed)))
			for new in added:
				row = self._new_row(new)
				self._take_probe(row, new.stamp, new.probe)
				session.add(row)
			for item in changed:
				row = await self._row(session, item.id)
				self._take_probe(row, item.stamp, item.probe)
				row.hidden = False  # a replaced file is a new version: list it again

	async def remove(self, record_ids: list[str]) -> None:
		async with self._sessions.begin() as session:
			await session.execute(delete(self._table).where(self._table.id.in_(record_ids)))

	async def hide(self, record_id: str) -> None:
		"""Unregisters an entry whose files stay: rescans skip it until its file changes or `unhide_all`."""
		async with self._sessions.begin() as session:
			(await self._row(session, record_id)).hidden = True

	async def unhide_all(self) -> int:
		async with self._sessions.begin() as session:
			rows = list(await session.scalars(select(self._table).where(self._table.hidden.is_(True))))
			for row in rows:
				row.hidden = False
			return len(rows)

	async def update(self, record_id: str, changes: ChangesT) -> None:
		async with self._sessions.begin() as session:
			self._take_changes(await self._row(session, record_id), changes)

	async def set_hashes(self, record_id: str, hashes: FileHashes, stamp: FileStamp) -> None:
		"""Stores the file's hashes for the file as it was (size, mtime) when hashed."""
		values = {**self._hash_values(hashes), 'hashed_size': stamp.size_bytes, 'hashed_mtime_ns': stamp.mtime_ns}
		async with self._sessions.begin() as session:  # an UPDATE: a row deleted meanwhile is no error
			await session.execute(update(self._table).where(self._table.id == record_id).values(**values))

	async def touch(self, record_ids: list[str], when: datetime) -> None:
		async with self._sessions.begin() as session:
			await session.execute(update(self._table).where(self._table.id.in_(record_ids)).values(last_used_at=when))
