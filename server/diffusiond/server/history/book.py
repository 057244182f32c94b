"""The history as HistoryService sees it: records with their image files, usage figures and archives. History pages
by keyset (created_at, id), not offset: a page stays right while new records are added."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime

from pydantic import BaseModel

from diffusiond.server.errors import FieldViolation, InvalidArgumentError, NotFoundError, UnavailableError
from diffusiond.server.history.archive_store import ArchiveRepository, ImportCounts
from diffusiond.server.history.outputs import Outputs
from diffusiond.server.history.transfer import export_chunks, import_chunks
from diffusiond.server.history.usage import UsageStats, usage_stats
from diffusiond.server.images import thumbnail_jpeg
from diffusiond.server.records import GenerationRecord, HistoryChanges, HistoryFilter
from diffusiond.server.settings import LimitsSettings, StorageSettings
from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)
THUMBNAIL_SIZES = range(16, 1025)


class HistoryPage(BaseModel):
	records: list[GenerationRecord]
	more: bool  # records follow the last one


class ImageData(BaseModel):
	data: bytes
	mime_type: str


class History:
	def __init__(
		self,
		repo: HistoryRepository,
		archives: ArchiveRepository,
		storage: StorageSettings,
		limits: LimitsSettings,
		outputs: Outputs,
	) -> None:
		self.repo = repo
		self._archives = archives
		self.outputs = outputs
		self._scratch = storage.scratch_dir  # archive uploads in progress
		self._limits = limits

	async def page(self, filters: HistoryFilter, after: tuple[datetime, str] | None, size: int) -> HistoryPage:
		"""Newest first, the `size` records after the cursor (created_at, id) of the previous page's last one."""
		records = await self.repo.page(filters, after, size + 1)
		return HistoryPage(records=records[:size], more=len(records) > size)

	async def get(self, generation_id: str) -> GenerationRecord:
		return await self.repo.get(generation_id)

	async def image(self, generation_id: str, index: int, thumbnail_size: int) -> ImageData:
		"""One image as stored, or a JPEG thumbnail `thumbnail_size` pixels on its long side (0 = the original)."""
		if thumbnail_size and thumbnail_size not in THUMBNAIL_SIZES:
			description = 'thumbnail_size is 16..1024 pixels (0 = the original)'
			raise InvalidArgumentError([FieldViolation(field='thumbnail_size', description=description)])
		record = await self.repo.get(generation_id)
		image = next((image for image in record.images if image.index == index), None)
		if image is None:
			raise NotFoundError(f'generation {record.id} has images 0..{len(record.images) - 1}, not {index}')
		try:
			data = await asyncio.to_thread(self.outputs.read, image.path)
		except FileNotFoundError as exc:
			raise NotFoundError(f'the file of image {index} of {record.id} is gone from {self.outputs.where}') from exc
		except OSError as exc:
			raise UnavailableError(f'image {index} of {record.id} could not be read: {exc.strerror}') from exc
		if thumbnail_size:
			limit = self._limits.max_image_pixels
			data = await asyncio.to_thread(thumbnail_jpeg, data, thumbnail_size, limit, 'index')
			return ImageData(data=data, mime_type='image/jpeg')
		return ImageData(data=data, mime_type=image.mime_type)

	async def update(self, generation_id: str, changes: HistoryChanges) -> GenerationRecord:
		record = await self.repo.get(generation_id)
		await self.repo.update(record.id, changes)
		return await self.repo.get(record.id)

	async def delete(self, generation_id: str) -> None:
		"""The record, then its image files (a store that cannot remove them now leaves them: logged)."""
		record = await self.repo.get(generation_id)
		await self.repo.delete(record.id)
		try:
			await asyncio.to_thread(self.outputs.remove, [image.path for image in record.images])
		except OSError as exc:
			log.warning('generation %s: its images stay in %s: %s', record.id, self.outputs.where, exc.strerror)

	async def usage(self) -> UsageStats:
		return await asyncio.to_thread(usage_stats, await self.repo.usage_rows())

	def export(self, include_images: bool) -> AsyncIterator[bytes]:
		return export_chunks(self._archives, self._scratch, self.outputs, include_images)

	async def import_archive(self, chunks: AsyncIterator[bytes]) -> ImportCounts:
		return await import_chunks(self._archives, self._scratch, self.outputs, self._limits, chunks)
