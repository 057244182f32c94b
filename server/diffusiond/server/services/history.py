"""HistoryService: list, get, images, update, delete and regenerate recorded generations."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from diffusiond.server.catalog.files import inside
from diffusiond.server.errors import FieldViolation, InvalidArgumentError, NotFoundError
from diffusiond.server.history.archive_store import ArchiveRepository
from diffusiond.server.history.files import remove_files
from diffusiond.server.history.usage import usage_stats
from diffusiond.server.images import thumbnail_jpeg
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.records import HistoryFilter
from diffusiond.server.services.archive import export_chunks, import_chunks
from diffusiond.server.services.generation import stream_job
from diffusiond.server.services.history_convert import (
	changes_from_pb,
	decode_cursor,
	encode_cursor,
	generation_to_pb,
	regenerate_params,
	time_from_pb,
	usage_to_pb,
)
from diffusiond.server.services.paging import filter_text, page_size
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc

Context = grpc.aio.ServicerContext[object, object]
THUMBNAIL_SIZES = range(16, 1025)


def _own_file(outputs_dir: Path, relative: str) -> Path | None:
	"""A record's image file, resolved inside the outputs folder (symlinks included); None if it points elsewhere."""
	try:
		return inside(outputs_dir, relative, 'path')
	except InvalidArgumentError:
		return None


class HistoryService(history_grpc.HistoryServiceServicer):
	def __init__(
		self,
		repo: HistoryRepository,
		manager: PipelineManager,
		outputs_dir: Path,
		archives: ArchiveRepository,
		scratch: Path,
		limits: LimitsSettings,
	) -> None:
		self._limits = limits
		self._max_pixels = limits.max_image_pixels
		self._repo = repo
		self._manager = manager
		self._outputs = outputs_dir
		self._archives = archives
		self._scratch = scratch

	async def ListGenerations(
		self, request: history_pb.ListGenerationsRequest, context: Context
	) -> history_pb.ListGenerationsResponse:
		size = page_size(request.page_size)
		filters = HistoryFilter(
			model=filter_text(request.model, 'model'),
			lora=filter_text(request.lora, 'lora'),
			style=filter_text(request.style, 'style'),
			text=filter_text(request.query, 'query'),
			favourite_only=request.favourites_only,
			since=time_from_pb(request, 'start_time'),
			until=time_from_pb(request, 'end_time'),
		)
		records = await self._repo.page(filters, decode_cursor(request.page_token), size + 1)
		more = len(records) > size
		records = records[:size]
		return history_pb.ListGenerationsResponse(
			generations=[generation_to_pb(record) for record in records],
			next_page_token=encode_cursor(records[-1]) if more else '',
		)

	async def GetGeneration(
		self, request: history_pb.GetGenerationRequest, context: Context
	) -> history_pb.GetGenerationResponse:
		return history_pb.GetGenerationResponse(generation=generation_to_pb(await self._repo.get(request.id)))

	async def GetImage(self, request: history_pb.GetImageRequest, context: Context) -> history_pb.GetImageResponse:
		if request.thumbnail_size and request.thumbnail_size not in THUMBNAIL_SIZES:
			raise InvalidArgumentError(
				[
					FieldViolation(
						field='thumbnail_size', description='thumbnail_size is 16..1024 pixels (0 = the original)'
					)
				]
			)
		record = await self._repo.get(request.generation_id)
		image = next((image for image in record.images if image.index == request.index), None)
		if image is None:
			raise NotFoundError(f'generation {record.id} has images 0..{len(record.images) - 1}, not {request.index}')
		path = await asyncio.to_thread(_own_file, self._outputs, image.path)
		if path is None:
			raise NotFoundError(f'the file of image {request.index} of {record.id} is not in the outputs folder')
		try:
			if request.thumbnail_size:
				size, limit = request.thumbnail_size, self._max_pixels
				data = await asyncio.to_thread(thumbnail_jpeg, path, size, limit, 'index')
				return history_pb.GetImageResponse(data=data, mime_type='image/jpeg')
			return history_pb.GetImageResponse(data=await asyncio.to_thread(path.read_bytes), mime_type=image.mime_type)
		except FileNotFoundError as exc:
			raise NotFoundError(
				f'the file of image {request.index} of {record.id} is gone from the outputs folder'
			) from exc

	async def UpdateGeneration(
		self, request: history_pb.UpdateGenerationRequest, context: Context
	) -> history_pb.UpdateGenerationResponse:
		changes = changes_from_pb(request)
		record = await self._repo.get(request.generation.id)
		await self._repo.update(record.id, changes)
		return history_pb.UpdateGenerationResponse(generation=generation_to_pb(await self._repo.get(record.id)))

	async def DeleteGeneration(
		self, request: history_pb.DeleteGenerationRequest, context: Context
	) -> history_pb.DeleteGenerationResponse:
		record = await self._repo.get(request.id)
		found = [await asyncio.to_thread(_own_file, self._outputs, image.path) for image in record.images]
		await self._repo.delete(record.id)
		await asyncio.to_thread(remove_files, [path for path in found if path is not None])
		return history_pb.DeleteGenerationResponse()

	async def GetUsageStats(
		self, request: history_pb.GetUsageStatsRequest, context: Context
	) -> history_pb.GetUsageStatsResponse:
		stats = await asyncio.to_thread(usage_stats, await self._repo.usage_rows())
		return usage_to_pb(stats)

	async def Regenerate(
		self, request: history_pb.RegenerateRequest, context: Context
	) -> AsyncIterator[gen_pb.GenerateEvent]:
		record = await self._repo.get(request.id)
		async for event in stream_job(self._manager, regenerate_params(record, self._limits), context.time_remaining()):
			yield event

	async def ExportArchive(
		self, request: history_pb.ExportArchiveRequest, context: Context
	) -> AsyncIterator[history_pb.ArchiveChunk]:
		async for chunk in export_chunks(self._archives, self._scratch, self._outputs, request.include_images):
			yield chunk

	async def ImportArchive(
		self, request_iterator: AsyncIterator[history_pb.ArchiveChunk], context: Context
	) -> history_pb.ImportArchiveResponse:
		counts = await import_chunks(self._archives, self._scratch, self._outputs, self._limits, request_iterator)
		return history_pb.ImportArchiveResponse(**counts.model_dump())
