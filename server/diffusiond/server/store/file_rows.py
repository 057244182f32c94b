"""What every catalog row (models, loras, embeddings, vaes) reads alike: its probe status, its file stamp and
whether its stored hash is still the file's (a file changed since it was hashed shows none)."""

from pydantic import BaseModel

from diffusiond.server.catalog.schemas import ModelStatus
from diffusiond.server.store.lenient import INT64, RowReader
from diffusiond.server.store.tables import ControlNetRow, EmbeddingRow, LoraRow, ModelRow, UpscalerRow, VaeRow

CatalogRow = ModelRow | LoraRow | EmbeddingRow | VaeRow | ControlNetRow | UpscalerRow


class FileFields(BaseModel):
	status: ModelStatus
	problem: str
	size_bytes: int
	mtime_ns: int
	current: bool  # hashed as the file is now
	sha256: str | None


def file_fields(read: RowReader, row: CatalogRow, refresh: str) -> FileFields:
	"""`refresh`: what heals a damaged entry ('refresh the LoRAs'), for the problem it then shows."""
	status = read.member('status', ModelStatus, row.status, ModelStatus.INVALID)
	problem = read.text('problem', row.problem)
	if status is ModelStatus.INVALID and not problem:
		problem = f'its catalog entry is damaged; {refresh} to probe the file again'
	size = read.integer('size_bytes', row.size_bytes, 0, INT64, 0)
	mtime = read.integer('mtime_ns', row.mtime_ns, 0, INT64, 0)
	current = row.hashed_size == size and row.hashed_mtime_ns == mtime
	sha256 = row.sha256 if current and isinstance(row.sha256, str) else None
	return FileFields(status=status, problem=problem, size_bytes=size, mtime_ns=mtime, current=current, sha256=sha256)
