"""The embeddings, vaes, controlnets and upscalers tables: rows in, pydantic AssetRecords out (the same columns; the
upscalers table has three more)."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.catalog.asset_schemas import (
	AssetChanges,
	AssetLayout,
	AssetProbe,
	AssetRecord,
	UpscalerProbe,
	UpscalerRecord,
)
from diffusiond.server.catalog.schemas import FileStamp, ModelBase
from diffusiond.server.errors import (
	ControlNetNotFoundError,
	EmbeddingNotFoundError,
	UpscalerNotFoundError,
	VaeNotFoundError,
)
from diffusiond.server.store.file_repo import FileRepository, NewEntry
from diffusiond.server.store.file_rows import file_fields
from diffusiond.server.store.lenient import RowReader
from diffusiond.server.store.rows import MAX_WIDTH, PROBED, REPROBE
from diffusiond.server.store.tables import ControlNetRow, EmbeddingRow, UpscalerRow, VaeRow

AssetRow = EmbeddingRow | VaeRow | ControlNetRow | UpscalerRow


def asset_of(row: AssetRow) -> AssetRecord:
	read = RowReader(f'{row.__tablename__} row {row.id}')
	fields = file_fields(read, row, 'refresh the folder')
	probe = AssetProbe(
		status=fields.status,
		problem=fields.problem,
		layout=read.member('layout', AssetLayout, row.layout, AssetLayout.UNKNOWN),
		base=read.member('base', ModelBase, row.base, ModelBase.UNKNOWN),
		pickle=bool(row.pickle),
		width=read.integer('width', row.width, 0, MAX_WIDTH, 0),
		vectors=read.integer('vectors', row.vectors, 0, MAX_WIDTH, 0),
	)
	record = AssetRecord(
		id=row.id,
		name=read.text('name', row.name, row.id),
		path=read.text('path', row.path),
		probe=probe,
		size_bytes=fields.size_bytes,
		mtime_ns=fields.mtime_ns,
		sha256=fields.sha256,
		added_at=read.time('added_at', row.added_at),
		last_used_at=read.optional_time('last_used_at', row.last_used_at),
	)
	read.done()
	return record.model_copy(update={'mtime_ns': REPROBE}) if read.any_of(PROBED) else record


def apply_asset_probe(row: AssetRow, stamp: FileStamp, probe: AssetProbe) -> None:
	row.path, row.size_bytes, row.mtime_ns = stamp.path, stamp.size_bytes, stamp.mtime_ns
	row.status, row.problem, row.layout = probe.status.value, probe.problem, probe.layout.value
	row.base, row.pickle, row.width, row.vectors = probe.base.value, probe.pickle, probe.width, probe.vectors


def _missing_embedding(record_id: str) -> EmbeddingNotFoundError:
	return EmbeddingNotFoundError(f'embedding {record_id} was removed meanwhile', metadata={'embedding': record_id})


def _missing_vae(record_id: str) -> VaeNotFoundError:
	return VaeNotFoundError(f'VAE {record_id} was removed meanwhile', metadata={'vae': record_id})


class EmbeddingRepository(FileRepository[EmbeddingRow, AssetRecord, AssetProbe, AssetChanges]):
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		super().__init__(sessions, EmbeddingRow, asset_of, _missing_embedding)

	def _new_row(self, new: NewEntry[AssetProbe]) -> EmbeddingRow:
		return EmbeddingRow(id=new.id, name=new.name, added_at=new.added_at, hidden=False)

	def _take_probe(self, row: EmbeddingRow, stamp: FileStamp, probe: AssetProbe) -> None:
		apply_asset_probe(row, stamp, probe)

	def _take_changes(self, row: EmbeddingRow, changes: AssetChanges) -> None:
		"""Nothing to change (AssetChanges is empty)."""

	def _hashed(self, record: AssetRecord) -> bool:
		return bool(record.sha256)


class VaeRepository(FileRepository[VaeRow, AssetRecord, AssetProbe, AssetChanges]):
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		super().__init__(sessions, VaeRow, asset_of, _missing_vae)

	def _new_row(self, new: NewEntry[AssetProbe]) -> VaeRow:
		return VaeRow(id=new.id, name=new.name, added_at=new.added_at, hidden=False)

	def _take_probe(self, row: VaeRow, stamp: FileStamp, probe: AssetProbe) -> None:
		apply_asset_probe(row, stamp, probe)

	def _take_changes(self, row: VaeRow, changes: AssetChanges) -> None:
		"""Nothing to change (AssetChanges is empty)."""

	def _hashed(self, record: AssetRecord) -> bool:
		return bool(record.sha256)


def _missing_controlnet(record_id: str) -> ControlNetNotFoundError:
	return ControlNetNotFoundError(f'ControlNet {record_id} was removed meanwhile', metadata={'controlnet': record_id})


class ControlNetRepository(FileRepository[ControlNetRow, AssetRecord, AssetProbe, AssetChanges]):
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		super().__init__(sessions, ControlNetRow, asset_of, _missing_controlnet)

	def _new_row(self, new: NewEntry[AssetProbe]) -> ControlNetRow:
		return ControlNetRow(id=new.id, name=new.name, added_at=new.added_at, hidden=False)

	def _take_probe(self, row: ControlNetRow, stamp: FileStamp, probe: AssetProbe) -> None:
		apply_asset_probe(row, stamp, probe)

	def _take_changes(self, row: ControlNetRow, changes: AssetChanges) -> None:
		"""Nothing to change (AssetChanges is empty)."""

	def _hashed(self, record: AssetRecord) -> bool:
		return bool(record.sha256)


def upscaler_of(row: UpscalerRow) -> UpscalerRecord:
	record = asset_of(row)
	read = RowReader(f'upscalers row {row.id}')
	probe = UpscalerProbe(
		**record.probe.model_dump(),
		architecture=read.text('architecture', row.architecture, ''),
		scale=read.integer('scale', row.scale, 0, 64, 0),
		purpose=read.text('purpose', row.purpose, ''),
	)
	read.done()
	return UpscalerRecord(**record.model_dump(exclude={'probe'}), probe=probe)


def _missing_upscaler(record_id: str) -> UpscalerNotFoundError:
	return UpscalerNotFoundError(f'upscaler {record_id} was removed meanwhile', metadata={'upscaler': record_id})


class UpscalerRepository(FileRepository[UpscalerRow, UpscalerRecord, UpscalerProbe, AssetChanges]):
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		super().__init__(sessions, UpscalerRow, upscaler_of, _missing_upscaler)

	def _new_row(self, new: NewEntry[UpscalerProbe]) -> UpscalerRow:
		return UpscalerRow(id=new.id, name=new.name, added_at=new.added_at, hidden=False)

	def _take_probe(self, row: UpscalerRow, stamp: FileStamp, probe: UpscalerProbe) -> None:
		apply_asset_probe(row, stamp, probe)
		row.architecture, row.scale, row.purpose = probe.architecture, probe.scale, probe.purpose

	def _take_changes(self, row: UpscalerRow, changes: AssetChanges) -> None:
		"""Nothing to change (AssetChanges is empty)."""

	def _hashed(self, record: UpscalerRecord) -> bool:
		return bool(record.sha256)
