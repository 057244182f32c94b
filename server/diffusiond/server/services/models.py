"""ModelService: the catalog (list, get, refresh, update, delete), the memory cache (load, unload), downloads."""

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from diffusiond.server.catalog.download import Downloader, DownloadRequest, DownloadResult
from diffusiond.server.catalog.files import inside, stamp_of
from diffusiond.server.catalog.schemas import ModelRecord
from diffusiond.server.catalog.transfer import DownloadProgress
from diffusiond.server.errors import DownloadRefusedError, FieldViolation, InvalidArgumentError
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.services.model_convert import base_from_pb, changes_from_pb, format_from_pb, model_to_pb
from diffusiond.server.services.paging import decode_token, encode_token, page_size
from diffusiond.server.settings import Settings
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc

Context = grpc.aio.ServicerContext[object, object]
_ORDERS = {model_pb.MODEL_ORDER_LAST_USED: 'last_used'}


def _required(field: str, value: str) -> str:
	if not value:
		raise InvalidArgumentError(
			[FieldViolation(field=field, description=f'{field} is required: an id, name or hash')]
		)
	return value


def _remove(target: Path) -> None:
	if target.is_dir() and not target.is_symlink():
		shutil.rmtree(target)
	else:
		target.unlink()


class ModelService(model_grpc.ModelServiceServicer):
	def __init__(self, manager: PipelineManager, settings: Settings) -> None:
		self._manager = manager
		self._catalog = manager.catalog
		self._settings = settings
		self._downloader = Downloader(self._catalog.models_dir, settings.downloads, settings.models.allow_pickle)

	def _cached(self) -> dict[str, bool]:
		"""Model id → active, for every model in the memory cache (one snapshot per call)."""
		return {entry.info.id: entry.active for entry in self._manager.cached()}

	def _to_pb(self, record: ModelRecord, cached: dict[str, bool] | None = None) -> model_pb.Model:
		cached = self._cached() if cached is None else cached
		return model_to_pb(record, loaded=record.id in cached, active=cached.get(record.id, False))

	async def ListModels(self, request: model_pb.ListModelsRequest, context: Context) -> model_pb.ListModelsResponse:
		size = page_size(request.page_size)
		offset = decode_token(request.page_token)
		cached = self._cached()
		records, total = await self._catalog.repo.query(
			base=base_from_pb(request.base),
			format=format_from_pb(request.format),
			ids=list(cached) if request.loaded_only else None,
			order=_ORDERS.get(request.order_by, 'name'),
			offset=offset,
			limit=size,
		)
		end = offset + len(records)
		return model_pb.ListModelsResponse(
			models=[self._to_pb(record, cached) for record in await self._catalog.describe(records)],
			next_page_token=encode_token(end) if end < total else '',
			total_size=total,
		)

	async def GetModel(self, request: model_pb.GetModelRequest, context: Context) -> model_pb.GetModelResponse:
		record = await self._catalog.get(_required('model', request.model))
		return model_pb.GetModelResponse(model=self._to_pb((await self._catalog.describe([record]))[0]))

	async def RefreshModels(
		self, request: model_pb.RefreshModelsRequest, context: Context
	) -> model_pb.RefreshModelsResponse:
		restored = await self._catalog.repo.unhide_all() if request.restore_unregistered else 0
		result = await self._catalog.refresh()
		for stale in result.stale_ids:  # a cached pipeline of a replaced or removed file must not be reused
			await self._manager.unload(stale)
		return model_pb.RefreshModelsResponse(
			added=result.added,
			removed=result.removed,
			changed=result.changed,
			unchanged=result.unchanged,
			restored=restored,
		)

	async def LoadModel(self, request: model_pb.LoadModelRequest, context: Context) -> model_pb.LoadModelResponse:
		record = await self._catalog.get(_required('model', request.model))
		was_cached = any(entry.info.id == record.id for entry in self._manager.cached())
		begin = time.perf_counter()
		await self._manager.load(record.id)
		elapsed = time.perf_counter() - begin
		record = await self._catalog.get(record.id)
		return model_pb.LoadModelResponse(model=self._to_pb(record), cold=not was_cached, load_seconds=elapsed)

	async def UnloadModel(self, request: model_pb.UnloadModelRequest, context: Context) -> model_pb.UnloadModelResponse:
		record = await self._catalog.get(_required('model', request.model))
		return model_pb.UnloadModelResponse(unloaded=await self._manager.unload(record.id))

	async def UpdateModel(self, request: model_pb.UpdateModelRequest, context: Context) -> model_pb.UpdateModelResponse:
		ref = _required('model.id', request.model.id or request.model.name)
		changes = changes_from_pb(request, self._settings.limits)
		record = await self._catalog.update(ref, changes)
		return model_pb.UpdateModelResponse(model=self._to_pb(record))

	async def DeleteModel(self, request: model_pb.DeleteModelRequest, context: Context) -> model_pb.DeleteModelResponse:
		record = await self._catalog.get(_required('model', request.model))
		message = self._to_pb(record)
		await self._manager.unload(record.id)
		if request.delete_files:
			target = await asyncio.to_thread(inside, self._catalog.models_dir, record.path, 'model')
			await asyncio.to_thread(_remove, target)
		await self._catalog.unregister(record, files_removed=request.delete_files)
		message.loaded = message.active = False
		return model_pb.DeleteModelResponse(model=message)

	async def DownloadModel(
		self, request: model_pb.DownloadModelRequest, context: Context
	) -> AsyncIterator[model_pb.DownloadEvent]:
		loop = asyncio.get_running_loop()
		events: asyncio.Queue[DownloadProgress | None] = asyncio.Queue()
		cancel = threading.Event()
		wanted = DownloadRequest(
			url=request.url, file_name=request.file_name, sha256=request.sha256, overwrite=request.overwrite
		)

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
				yield model_pb.DownloadEvent(progress=model_pb.DownloadProgress(**progress.model_dump()))
			result = await task
		finally:
			cancel.set()  # the caller went away: stop at the next chunk, keep the partial file for a resume
			if not task.done():
				task.add_done_callback(lambda done: done.cancelled() or done.exception())
		await self._catalog.refresh()
		record = await self._catalog.by_path(result.path)
		if record is None:
			raise DownloadRefusedError(f'{result.path} was saved but is not a model the catalog lists')
		stamp = await asyncio.to_thread(stamp_of, self._catalog.models_dir, record.path)
		if stamp is not None:
			await self._catalog.repo.set_hash(record.id, result.sha256, stamp.size_bytes, stamp.mtime_ns)
		yield model_pb.DownloadEvent(completed=self._to_pb(await self._catalog.get(record.id)))
