"""ModelService: the catalog (list, get, refresh, update, delete), the memory cache (load, unload), downloads."""

from collections.abc import AsyncIterator

import grpc
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.catalog import ModelQuery
from diffusiond.server.catalog.download import Downloader, DownloadRequest
from diffusiond.server.catalog.schemas import ModelRecord
from diffusiond.server.cluster.heartbeat import Heartbeat
from diffusiond.server.errors import DiffusiondError, FieldViolation, InvalidArgumentError
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.jobs.shelf import ModelShelf
from diffusiond.server.services.model_convert import base_from_pb, changes_from_pb, format_from_pb, model_to_pb
from diffusiond.server.services.paging import decode_token, next_token, page_size
from diffusiond.server.services.refresh import refresh_counts
from diffusiond.server.settings import Settings
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc

Context = grpc.aio.ServicerContext[object, object]


def _required(field: str, value: str) -> str:
	if not value:
		raise InvalidArgumentError(
			[FieldViolation(field=field, description=f'{field} is required: an id, name or hash')]
		)
	return value


class ModelService(model_grpc.ModelServiceServicer):
	def __init__(self, manager: PipelineManager, settings: Settings, heartbeat: Heartbeat) -> None:
		downloader = Downloader(manager.catalog.models_dir, settings.downloads, settings.models.allow_pickle)
		self._shelf = ModelShelf(manager, downloader)
		self._settings = settings
		self._heartbeat = heartbeat

	async def _holders(self) -> dict[str, list[str]]:
		"""Model name → the live nodes whose catalog has it (a store that cannot say: none)."""
		try:
			nodes = await self._heartbeat.repo.all()
		except (SQLAlchemyError, DiffusiondError):
			return {}
		holders: dict[str, list[str]] = {}
		for node in nodes:
			if self._heartbeat.alive(node):
				for name in node.status.models:
					holders.setdefault(name, []).append(node.id)
		return holders

	def _to_pb(
		self, record: ModelRecord, holders: dict[str, list[str]], cached: dict[str, bool] | None = None
	) -> model_pb.Model:
		cached = self._shelf.cached() if cached is None else cached
		message = model_to_pb(record, loaded=record.id in cached, active=cached.get(record.id, False))
		message.nodes.extend(holders.get(record.name, []))
		return message

	async def ListModels(self, request: model_pb.ListModelsRequest, context: Context) -> model_pb.ListModelsResponse:
		size = page_size(request.page_size)
		offset = decode_token(request.page_token)
		cached = self._shelf.cached()
		query = ModelQuery(
			base=base_from_pb(request.base),
			format=format_from_pb(request.format),
			ids=list(cached) if request.loaded_only else None,
			order='last_used' if request.order_by == model_pb.MODEL_ORDER_LAST_USED else 'name',
		)
		found = await self._shelf.browse(query, offset, size)
		holders = await self._holders()
		return model_pb.ListModelsResponse(
			models=[self._to_pb(record, holders, cached) for record in found.items],
			next_page_token=next_token(found),
			total_size=found.total,
		)

	async def GetModel(self, request: model_pb.GetModelRequest, context: Context) -> model_pb.GetModelResponse:
		record = await self._shelf.get(_required('model', request.model))
		return model_pb.GetModelResponse(model=self._to_pb(record, await self._holders()))

	async def RefreshModels(
		self, request: model_pb.RefreshModelsRequest, context: Context
	) -> model_pb.RefreshModelsResponse:
		result = await self._shelf.refresh(request.restore_unregistered)
		return model_pb.RefreshModelsResponse(**refresh_counts(result))

	async def LoadModel(self, request: model_pb.LoadModelRequest, context: Context) -> model_pb.LoadModelResponse:
		loaded = await self._shelf.load(_required('model', request.model))
		return model_pb.LoadModelResponse(
			model=self._to_pb(loaded.record, await self._holders()), cold=loaded.cold, load_seconds=loaded.seconds
		)

	async def UnloadModel(self, request: model_pb.UnloadModelRequest, context: Context) -> model_pb.UnloadModelResponse:
		return model_pb.UnloadModelResponse(unloaded=await self._shelf.unload(_required('model', request.model)))

	async def UpdateModel(self, request: model_pb.UpdateModelRequest, context: Context) -> model_pb.UpdateModelResponse:
		ref = _required('model.id', request.model.id or request.model.name)
		record = await self._shelf.update(ref, changes_from_pb(request, self._settings.limits))
		return model_pb.UpdateModelResponse(model=self._to_pb(record, await self._holders()))

	async def DeleteModel(self, request: model_pb.DeleteModelRequest, context: Context) -> model_pb.DeleteModelResponse:
		record = await self._shelf.delete(_required('model', request.model), request.delete_files)
		return model_pb.DeleteModelResponse(model=model_to_pb(record))

	async def DownloadModel(
		self, request: model_pb.DownloadModelRequest, context: Context
	) -> AsyncIterator[model_pb.DownloadEvent]:
		wanted = DownloadRequest(
			url=request.url, file_name=request.file_name, sha256=request.sha256, overwrite=request.overwrite
		)
		async for event in self._shelf.download(wanted):
			if isinstance(event, ModelRecord):
				yield model_pb.DownloadEvent(completed=self._to_pb(event, await self._holders()))
			else:
				yield model_pb.DownloadEvent(progress=model_pb.DownloadProgress(**event.model_dump()))
