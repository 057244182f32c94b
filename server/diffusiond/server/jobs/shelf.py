"""The models as ModelService sees them: the catalog's entries together with what the engine holds in memory, so
that a rescan, a delete or a download never leaves a pipeline of a file that is gone or changed in the cache."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from pydantic import BaseModel

from diffusiond.server.catalog.catalog import ModelQuery
from diffusiond.server.catalog.download import Downloader, DownloadRequest, DownloadResult
from diffusiond.server.catalog.files import FileHashes, stamp_of
from diffusiond.server.catalog.schemas import ModelChanges, ModelRecord, RefreshResult
from diffusiond.server.catalog.transfer import DownloadProgress
from diffusiond.server.errors import DownloadRefusedError
from diffusiond.server.jobs.assets import OWN_VAE
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.listing import Window


class Loaded(BaseModel):
	record: ModelRecord
	cold: bool  # it was not in the cache before
	seconds: float


class ModelShelf:
	def __init__(self, manager: PipelineManager, downloader: Downloader) -> None:
		self._manager = manager
		self.catalog = manager.catalog
		self._downloader = downloader

	def cached(self) -> dict[str, bool]:
		"""Model id → active, for every model in the memory cache (one snapshot per call)."""
		return {entry.info.id: entry.active for entry in self._manager.cached()}

	async def browse(self, query: ModelQuery, offset: int, limit: int) -> Window[ModelRecord]:
		return await self.catalog.browse(query, offset, limit)

	async def get(self, ref: str) -> ModelRecord:
		"""As clients see it (a model that cannot load now says why)."""
		return (await self.catalog.describe([await self.catalog.get(ref)]))[0]

	async def refresh(self, restore: bool) -> RefreshResult:
		result = await self.catalog.refresh(restore)
		for stale in result.stale_ids:  # a cached pipeline of a replaced or removed file must not be reused
			await self._manager.unload(stale)
		return result

	async def load(self, ref: str) -> Loaded:
		record = await self.catalog.get(ref)
		cold = record.id not in self.cached()
		begin = time.perf_counter()
		await self._manager.load(record.id)
		seconds = time.perf_counter() - begin
		return Loaded(record=await self.catalog.get(record.id), cold=cold, seconds=seconds)

	async def unload(self, ref: str) -> bool:
		return await self._manager.unload((await self.catalog.get(ref)).id)

	async def update(self, ref: str, changes: ModelChanges) -> ModelRecord:
		"""A default VAE must name one that suits the model now (NOT_FOUND / FAILED_PRECONDITION otherwise); one
		deleted later falls back to the model's own, with a notice (jobs/assets.py)."""
		defaults = changes.defaults
		if defaults is not None and defaults.vae and defaults.vae.lower() != OWN_VAE:
			model = await self.catalog.info(await self.catalog.get(ref))
			record = await self._manager.assets.vaes.resolve(defaults.vae, model)
			changes = changes.model_copy(update={'defaults': defaults.model_copy(update={'vae': record.name})})
		return await self.catalog.update(ref, changes)

	async def delete(self, ref: str, delete_files: bool) -> ModelRecord:
		"""Out of the cache first, then out of the catalog (and the folder, with `delete_files`)."""
		record = await self.catalog.get(ref)
		await self._manager.unload(record.id)
		await self.catalog.delete(record, delete_files)
		return record

	async def download(self, wanted: DownloadRequest) -> AsyncIterator[DownloadProgress | ModelRecord]:
		"""The download's progress, then the catalogued model. The transfer runs in a thread; a caller that goes
		away stops it at the next chunk and keeps the partial file for a resume."""
		loop = asyncio.get_running_loop()
		events: asyncio.Queue[DownloadProgress | None] = asyncio.Queue()
		cancel = threading.Event()

		def report(progress: DownloadProgress) -> None:
			loop.call_soon_threadsafe(events.put_nowait, progress)

		def run() -> DownloadResult:
			try:
				return self._downloader.run(wanted, cancel, report)
			finally:
				loop.call_soon_threadsafe(events.put_nowait, None)

		task = asyncio.ensure_future(asyncio.to_thread(run))
		try:
			while (progress := await events.get()) is not None:
				yield progress
			result = await task
		finally:
			cancel.set()
			if not task.done():
				task.add_done_callback(lambda done: done.cancelled() or done.exception())
		yield await self._catalogue(result)

	async def _catalogue(self, result: DownloadResult) -> ModelRecord:
		"""The downloaded file in the catalog, with the sha256 the download computed (no second read)."""
		await self.catalog.refresh()
		record = await self.catalog.by_path(result.path)
		if record is None:
			raise DownloadRefusedError(f'{result.path} was saved but is not a model the catalog lists')
		stamp = await asyncio.to_thread(stamp_of, self.catalog.models_dir, record.path)
		if stamp is not None:
			await self.catalog.repo.set_hashes(record.id, FileHashes(sha256=result.sha256, addnet=''), stamp)
		return await self.catalog.get(record.id)
