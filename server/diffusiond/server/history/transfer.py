"""Archives streamed out of and into the daemon as chunks of bytes; temporary files live in the data folder's scratch folder.

An import is all or nothing, with bounded memory: the upload is written to a hidden scratch file; a first
pass checks the documents and every record (archive_rules) and finds the new ones; their images are checked
and extracted; then one transaction adds everything, reading the records again a batch at a time. Any
failure removes the files the import wrote. A kill in the middle leaves only the scratch file, which the
next start removes, and images that recovery treats like any other unrecorded finished image.
"""

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from diffusiond.server.errors import FieldViolation, InvalidArgumentError, StorageFullError
from diffusiond.server.history.archive_read import ArchiveReader, invalid
from diffusiond.server.history.archive_rules import catalog_changes, check_records
from diffusiond.server.history.archive_store import ArchiveRepository, ImportCounts
from diffusiond.server.history.archive_write import ArchiveWriter
from diffusiond.server.history.outputs import Outputs
from diffusiond.server.records import GenerationRecord, StoredImage
from diffusiond.server.settings import LimitsSettings

CHUNK_BYTES = 1024 * 1024
MAX_ARCHIVE_BYTES = 64 * 1024**3
BATCH = 500
SPARE_BYTES = 256 * 1024**2  # room an import leaves free on the disk


def _scratch(folder: Path) -> Path:
	folder.mkdir(parents=True, exist_ok=True)
	handle, name = tempfile.mkstemp(prefix='.archive-', suffix='.zip', dir=folder)
	os.close(handle)
	return Path(name)


async def export_chunks(
	archives: ArchiveRepository, scratch_dir: Path, outputs: Outputs, include_images: bool
) -> AsyncIterator[bytes]:
	path = await asyncio.to_thread(_scratch, scratch_dir)
	try:
		writer = await asyncio.to_thread(ArchiveWriter, path)
		try:
			await asyncio.to_thread(writer.begin, await archives.catalog())
			images: list[str] = []
			async for page in archives.generation_pages():
				await asyncio.to_thread(writer.records, page)
				images += [image.path for record in page for image in record.images]
			if include_images:
				await asyncio.to_thread(writer.images, outputs, images)
		finally:
			await asyncio.to_thread(writer.close)
		with path.open('rb') as file:
			while data := await asyncio.to_thread(file.read, CHUNK_BYTES):
				yield data
	finally:
		path.unlink(missing_ok=True)


class _Plan(BaseModel):
	"""What the first pass found: the new records' ids and the images to bring in."""

	new_ids: set[str] = Field(default_factory=set)
	images: list[StoredImage] = Field(default_factory=list)


def _batches(records: Iterator[GenerationRecord]) -> list[GenerationRecord]:
	return list(itertools.islice(records, BATCH))


async def _plan(reader: ArchiveReader, archives: ArchiveRepository, limits: LimitsSettings) -> _Plan:
	plan = _Plan()
	seen: set[str] = set()
	records = reader.records()
	count = 0
	while batch := await asyncio.to_thread(_batches, records):
		check_records(batch, limits, count)
		count += len(batch)
		ids = [record.id for record in batch]
		twice = next((record_id for record_id in ids if record_id in seen), None) or (
			next((record_id for record_id in ids if ids.count(record_id) > 1), None)
		)
		if twice is not None:
			raise invalid(f'the archive holds record {twice} twice')
		seen.update(ids)
		known = await archives.history.existing(ids)
		new = [record for record in batch if record.id not in known]
		paths = [image.path for record in new for image in record.images]
		owned = await archives.history.recorded_paths(paths)
		if owned:
			raise invalid(f'the archive names {sorted(owned)[0]!r}, a file another record owns')
		plan.new_ids.update(record.id for record in new)
		plan.images += [image for record in new for image in record.images]
	return plan


def _room(outputs: Outputs, needed: int) -> None:
	"""A local outputs folder must have room for the images (a bucket is not measured)."""
	folder = outputs.folder
	if folder is None:
		return
	folder.mkdir(parents=True, exist_ok=True)
	free = shutil.disk_usage(folder).free
	if needed + SPARE_BYTES > free:
		raise StorageFullError(
			f'the archive brings {needed / 2**20:.0f} MiB of images but {folder} has {free / 2**20:.0f} MiB '
			'free; free some space, then import again',
			metadata={'path': str(folder)},
		)


def _extract(reader: ArchiveReader, images: list[StoredImage], outputs: Outputs, max_pixels: int) -> list[str]:
	"""The new records' images, each checked before it lands; returns the files written (to undo them)."""
	_room(outputs, sum(image.size_bytes for image in images if image.path in reader.images))
	written: list[str] = []
	try:
		for image in images:
			existed = outputs.exists(image.path)
			if reader.extract(image, outputs, max_pixels) and not existed:
				written.append(image.path)
	except BaseException:
		outputs.remove(written)
		raise
	return written


async def import_chunks(
	archives: ArchiveRepository,
	scratch_dir: Path,
	outputs: Outputs,
	limits: LimitsSettings,
	chunks: AsyncIterator[bytes],
) -> ImportCounts:
	path = await asyncio.to_thread(_scratch, scratch_dir)
	written: list[str] = []
	reader: ArchiveReader | None = None
	try:
		await _receive(path, chunks)
		reader = await asyncio.to_thread(ArchiveReader, path)
		changes = catalog_changes(await asyncio.to_thread(reader.catalog), limits)
		plan = await _plan(reader, archives, limits)
		written = await asyncio.to_thread(_extract, reader, plan.images, outputs, limits.max_image_pixels)
		records = reader.records()
		return await archives.apply(changes, lambda: asyncio.to_thread(_batches, records), plan.new_ids)
	except BaseException:
		await asyncio.to_thread(outputs.remove, written)
		raise
	finally:
		if reader is not None:
			await asyncio.to_thread(reader.close)
		path.unlink(missing_ok=True)


async def _receive(path: Path, chunks: AsyncIterator[bytes]) -> None:
	size = 0
	with path.open('wb') as file:
		async for chunk in chunks:
			size += len(chunk)
			if size > MAX_ARCHIVE_BYTES:
				raise InvalidArgumentError(
					[FieldViolation(field='archive', description='the archive is larger than 64 GiB')]
				)
			await asyncio.to_thread(file.write, chunk)
