"""LoraService calls of the asyncio client."""

from __future__ import annotations  # the async stub type exists for type checkers only

from collections.abc import Iterable

from diffusiond.client.lora_requests import batch_request, list_loras_request, update_lora_request
from diffusiond.client.paging import all_pages_async
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc


class AsyncLoraCalls:
	"""Mixed into the client, which sets `_loras` and `timeout`."""

	_loras: lora_grpc.LoraServiceAsyncStub
	timeout: float | None

	async def list_loras(
		self, base: str = '', enabled: bool | None = None, tag: str = '', query: str = ''
	) -> list[lora_pb.Lora]:
		"""Every matching LoRA (all pages), by name."""

		async def page(token: str) -> tuple[Iterable[lora_pb.Lora], str]:
			response = await self._loras.ListLoras(
				list_loras_request(base, enabled, tag, query, token), timeout=self.timeout
			)
			return response.loras, response.next_page_token

		return await all_pages_async(page)

	async def get_lora(self, lora: str) -> lora_pb.Lora:
		return (await self._loras.GetLora(lora_pb.GetLoraRequest(lora=lora), timeout=self.timeout)).lora

	async def refresh_loras(self, restore_unregistered: bool = False) -> lora_pb.RefreshLorasResponse:
		request = lora_pb.RefreshLorasRequest(restore_unregistered=restore_unregistered)
		return await self._loras.RefreshLoras(request, timeout=self.timeout)

	async def update_lora(
		self,
		lora: str,
		*,
		display_name: str | None = None,
		tags: list[str] | None = None,
		trigger_words: list[str] | None = None,
		default_weight: float | None = None,
		note: str | None = None,
	) -> lora_pb.Lora:
		request = update_lora_request(lora, display_name, tags, trigger_words, default_weight, note)
		return (await self._loras.UpdateLora(request, timeout=self.timeout)).lora

	async def batch_loras(self, loras: list[str], action: str, delete_files: bool = False) -> list[lora_pb.BatchResult]:
		"""`action`: enable, disable or delete; one result per entry, in order."""
		request = batch_request(loras, action, delete_files)
		return list((await self._loras.BatchUpdateLoras(request, timeout=self.timeout)).results)

	async def recommend_loras(
		self, prompt: str, negative_prompt: str = '', model: str = '', limit: int = 0
	) -> lora_pb.RecommendLorasResponse:
		"""The LoRAs that fit `prompt` and `model` (default: the daemon's), best first, with scores and reasons."""
		request = lora_pb.RecommendLorasRequest(
			prompt=prompt, negative_prompt=negative_prompt, model=model, limit=limit
		)
		return await self._loras.RecommendLoras(request, timeout=self.timeout)

	async def similar_loras(self, lora: str, limit: int = 0) -> lora_pb.SimilarLorasResponse:
		"""The LoRAs of the same base nearest to `lora` by their text embeddings."""
		request = lora_pb.SimilarLorasRequest(lora=lora, limit=limit)
		return await self._loras.SimilarLoras(request, timeout=self.timeout)
