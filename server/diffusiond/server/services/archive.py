"""Streaming archives out of and into the daemon; temporary files live in the data folder."""

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.history.archive import extract_images, read_archive, write_archive
from diffusiond.server.history.files import remove_files
from diffusiond.server.store.archive_repo import ArchiveRepository, ImportCounts
from diffusiond.v1 import history_service_pb2 as history_pb

CHUNK_BYTES = 1024 * 1024
MAX_ARCHIVE_BYTES = 64 * 1024**3


def _scratch(folder: Path) -> Path:
	folder.mkdir(parents=True, exist_ok=True)
	handle, name = tempfile.mkstemp(prefix='.archive-', suffix='.zip', dir=folder)
	os.close(handle)
	return Path(name)


async def export_chunks(
	archives: ArchiveRepository, scratch_dir: Path, outputs_dir: Path, include_images: bool
) -> AsyncIterator[history_pb.ArchiveChunk]:
	contents = await archives.snapshot()
	path = await asyncio.to_thread(_scratch, scratch_dir)
	try:
		await asyncio.to_thread(write_archive, path, contents, outputs_dir if include_images else None)
		with path.open('rb') as file:
			while data := await asyncio.to_thread(file.read, CHUNK_BYTES):
				yield history_pb.ArchiveChunk(data=data)
	finally:
		path.unlink(missing_ok=True)


async def import_chunks(
	archives: ArchiveRepository, scratch_dir: Path, outputs_dir: Path, chunks: AsyncIterator[history_pb.ArchiveChunk]
) -> ImportCounts:
	"""All or nothing: images are extracted first and removed again if the store refuses the rest."""
	path = await asyncio.to_thread(_scratch, scratch_dir)
	written: list[Path] = []
	try:
		size = 0
		with path.open('wb') as file:
			async for chunk in chunks:
				size += len(chunk.data)
				if size > MAX_ARCHIVE_BYTES:
					raise InvalidArgumentError(
						[FieldViolation(field='archive', description='the archive is larger than 64 GiB')]
					)
				await asyncio.to_thread(file.write, chunk.data)
		contents, images = await asyncio.to_thread(read_archive, path)
		new = await archives.new_generations(contents.generations)
		wanted = {image.path for record in contents.generations if record.id in new for image in record.images}
		written = await asyncio.to_thread(extract_images, path, images, wanted, outputs_dir)
		return await archives.apply(contents)
	except BaseException:
		await asyncio.to_thread(remove_files, written)
		raise
	finally:
		path.unlink(missing_ok=True)
