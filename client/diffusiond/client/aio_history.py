"""HistoryService calls of the asyncio client."""

from __future__ import annotations  # the async stub type exists for type checkers only

from collections.abc import AsyncGenerator, AsyncIterator

from diffusiond.client.update_requests import update_generation_request
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc


class AsyncHistoryCalls:
	"""Mixed into the client, which sets `_history` and `timeout`."""

	_history: history_grpc.HistoryServiceAsyncStub
	timeout: float | None

	async def list_generations(
		self,
		query: str = '',
		model: str = '',
		lora: str = '',
		style: str = '',
		favourites_only: bool = False,
		limit: int = 50,
	) -> list[history_pb.Generation]:
		"""The newest `limit` matching records."""
		found: list[history_pb.Generation] = []
		token = ''
		while len(found) < limit:
			request = history_pb.ListGenerationsRequest(
				query=query,
				model=model,
				lora=lora,
				style=style,
				favourites_only=favourites_only,
				page_size=min(500, limit - len(found)),
				page_token=token,
			)
			response = await self._history.ListGenerations(request, timeout=self.timeout)
			found.extend(response.generations)
			token = response.next_page_token
			if not token:
				break
		return found

	async def get_generation(self, generation_id: str) -> history_pb.Generation:
		request = history_pb.GetGenerationRequest(id=generation_id)
		return (await self._history.GetGeneration(request, timeout=self.timeout)).generation

	async def get_image(self, generation_id: str, index: int = 0, thumbnail_size: int = 0) -> bytes:
		request = history_pb.GetImageRequest(generation_id=generation_id, index=index, thumbnail_size=thumbnail_size)
		return (await self._history.GetImage(request, timeout=self.timeout)).data

	async def update_generation(
		self,
		generation_id: str,
		*,
		favourite: bool | None = None,
		tags: list[str] | None = None,
		note: str | None = None,
	) -> history_pb.Generation:
		"""Changes only the fields given."""
		request = update_generation_request(generation_id, favourite, tags, note)
		return (await self._history.UpdateGeneration(request, timeout=self.timeout)).generation

	async def usage_stats(self) -> history_pb.GetUsageStatsResponse:
		"""Jobs and images per model, LoRA and style, with last use; images per day."""
		return await self._history.GetUsageStats(history_pb.GetUsageStatsRequest(), timeout=self.timeout)

	async def delete_generation(self, generation_id: str) -> None:
		await self._history.DeleteGeneration(history_pb.DeleteGenerationRequest(id=generation_id), timeout=self.timeout)

	async def regenerate(self, generation_id: str) -> AsyncGenerator[gen_pb.GenerateEvent, None]:
		"""Runs a recorded job again (same pixels on the same model); leaving the loop early cancels it."""
		call = self._history.Regenerate(history_pb.RegenerateRequest(id=generation_id))
		try:
			async for event in call:
				yield event
		finally:
			call.cancel()

	async def export_archive(self, include_images: bool = False) -> AsyncGenerator[bytes, None]:
		"""The archive in chunks (styles, catalog metadata, history; images when asked)."""
		call = self._history.ExportArchive(history_pb.ExportArchiveRequest(include_images=include_images))
		async for chunk in call:
			yield chunk.data

	async def import_archive(self, chunks: AsyncIterator[bytes]) -> history_pb.ImportArchiveResponse:
		"""All or nothing; importing the same archive twice creates no duplicates."""

		async def messages() -> AsyncIterator[history_pb.ArchiveChunk]:
			async for data in chunks:
				yield history_pb.ArchiveChunk(data=data)

		return await self._history.ImportArchive(messages(), timeout=self.timeout)
