"""HistoryService: list, get, images, update, delete and regenerate recorded generations; archives."""

from collections.abc import AsyncIterator

import grpc

from diffusiond.server.cluster.peer_images import FORWARDED, PeerImages
from diffusiond.server.errors import GenerationNotFoundError, NotFoundError
from diffusiond.server.history.book import History
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.records import HistoryFilter
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
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc

Context = grpc.aio.ServicerContext[object, object]


async def _data(chunks: AsyncIterator[history_pb.ArchiveChunk]) -> AsyncIterator[bytes]:
	async for chunk in chunks:
		yield chunk.data


class HistoryService(history_grpc.HistoryServiceServicer):
	def __init__(
		self, history: History, manager: PipelineManager, limits: LimitsSettings, peers: PeerImages | None = None
	) -> None:
		self._history = history
		self._manager = manager
		self._limits = limits
		self._peers = peers  # images in the outputs folders of the other daemons on this database

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
		found = await self._history.page(filters, decode_cursor(request.page_token), size)
		return history_pb.ListGenerationsResponse(
			generations=[generation_to_pb(record) for record in found.records],
			next_page_token=encode_cursor(found.records[-1]) if found.more else '',
		)

	async def GetGeneration(
		self, request: history_pb.GetGenerationRequest, context: Context
	) -> history_pb.GetGenerationResponse:
		return history_pb.GetGenerationResponse(generation=generation_to_pb(await self._history.get(request.id)))

	async def GetImage(self, request: history_pb.GetImageRequest, context: Context) -> history_pb.GetImageResponse:
		try:
			image = await self._history.image(request.generation_id, request.index, request.thumbnail_size)
		except GenerationNotFoundError:
			raise
		except NotFoundError:
			node = await self._made_elsewhere(request.generation_id, context)
			if node is None or self._peers is None:
				raise
			return await self._peers.fetch(node, request)
		return history_pb.GetImageResponse(data=image.data, mime_type=image.mime_type)

	async def _made_elsewhere(self, generation_id: str, context: Context) -> str | None:
		"""The other node whose outputs folder holds the record's images (None: this one's, or not asked)."""
		forwarded = any(key == FORWARDED for key, _ in context.invocation_metadata() or ())
		if self._peers is None or forwarded:
			return None
		node = (await self._history.get(generation_id)).node
		return node if node and node != self._manager.node else None

	async def UpdateGeneration(
		self, request: history_pb.UpdateGenerationRequest, context: Context
	) -> history_pb.UpdateGenerationResponse:
		record = await self._history.update(request.generation.id, changes_from_pb(request))
		return history_pb.UpdateGenerationResponse(generation=generation_to_pb(record))

	async def DeleteGeneration(
		self, request: history_pb.DeleteGenerationRequest, context: Context
	) -> history_pb.DeleteGenerationResponse:
		await self._history.delete(request.id)
		return history_pb.DeleteGenerationResponse()

	async def GetUsageStats(
		self, request: history_pb.GetUsageStatsRequest, context: Context
	) -> history_pb.GetUsageStatsResponse:
		return usage_to_pb(await self._history.usage())

	async def Regenerate(
		self, request: history_pb.RegenerateRequest, context: Context
	) -> AsyncIterator[gen_pb.GenerateEvent]:
		params = regenerate_params(await self._history.get(request.id), self._limits)
		async for event in stream_job(self._manager, params, context.time_remaining()):
			yield event

	async def ExportArchive(
		self, request: history_pb.ExportArchiveRequest, context: Context
	) -> AsyncIterator[history_pb.ArchiveChunk]:
		async for data in self._history.export(request.include_images):
			yield history_pb.ArchiveChunk(data=data)

	async def ImportArchive(
		self, request_iterator: AsyncIterator[history_pb.ArchiveChunk], context: Context
	) -> history_pb.ImportArchiveResponse:
		counts = await self._history.import_archive(_data(request_iterator))
		return history_pb.ImportArchiveResponse(**counts.model_dump())
