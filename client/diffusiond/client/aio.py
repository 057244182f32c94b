"""The asyncio client, with the same surface as the blocking one."""

import copy
from collections.abc import AsyncGenerator, Iterable
from types import TracebackType
from typing import Self, Unpack

from diffusiond.client.aio_history import AsyncHistoryCalls
from diffusiond.client.aio_loras import AsyncLoraCalls
from diffusiond.client.aio_styles import AsyncStyleCalls
from diffusiond.client.connection import Connection, Tls
from diffusiond.client.images import GeneratedImage
from diffusiond.client.model_requests import BASES, download_request, list_request, update_request
from diffusiond.client.paging import all_pages_async
from diffusiond.client.request import GenerateOptions, build_generate_request
from diffusiond.client.translate import translate_errors
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import style_service_pb2_grpc as style_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc


@translate_errors
class AsyncClient(AsyncLoraCalls, AsyncStyleCalls, AsyncHistoryCalls):
	"""asyncio client. `address` is host:port or unix:PATH, or several daemons on one database as
	host:port,host:port or dns:///name:port (calls spread round-robin); default $DIFFUSIOND_ADDRESS or
	localhost:50051.

	`token` (default $DIFFUSIOND_TOKEN) is sent as `authorization: Bearer`; `tls` turns TLS on.
	"""

	def __init__(
		self,
		address: str | None = None,
		*,
		timeout: float | None = None,
		token: str | None = None,
		tls: Tls | None = None,
	) -> None:
		connection = Connection.resolve(address, token, tls)
		self.address = connection.address
		self.timeout = timeout
		self._channel = connection.aio_channel()
		self._generation = gen_grpc.GenerationServiceStub(self._channel)
		self._system = sys_grpc.SystemServiceStub(self._channel)
		self._models = model_grpc.ModelServiceStub(self._channel)
		self._loras = lora_grpc.LoraServiceStub(self._channel)
		self._assets = asset_grpc.AssetServiceStub(self._channel)
		self._styles = style_grpc.StyleServiceStub(self._channel)
		self._history = history_grpc.HistoryServiceStub(self._channel)

	async def __aenter__(self) -> Self:
		return self

	async def __aexit__(
		self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
	) -> None:
		await self.close()

	def with_timeout(self, timeout: float | None) -> Self:
		"""This client (same channel) with `timeout` seconds as the deadline of each call: `c.with_timeout(5).list_models()`."""
		view = copy.copy(self)
		view.timeout = timeout
		return view

	async def close(self) -> None:
		await self._channel.close(None)

	async def generate(
		self, prompt: str, **options: Unpack[GenerateOptions]
	) -> AsyncGenerator[gen_pb.GenerateEvent, None]:
		"""Streams the job's events; leaving the loop early cancels the job."""
		call = self._generation.Generate(build_generate_request(prompt, **options), timeout=self.timeout)
		try:
			async for event in call:
				yield event
		finally:
			call.cancel()

	async def upscale(
		self,
		image: bytes,
		upscaler: str = '',
		scale: float | None = None,
		output_format: gen_pb.ImageFormat.ValueType = gen_pb.IMAGE_FORMAT_UNSPECIFIED,
	) -> AsyncGenerator[gen_pb.GenerateEvent, None]:
		"""Streams an UpscaleImage job's events; leaving the loop early cancels it."""
		request = gen_pb.UpscaleImageRequest(image=image, upscaler=upscaler, scale=scale, output_format=output_format)
		call = self._generation.UpscaleImage(request, timeout=self.timeout)
		try:
			async for event in call:
				yield event
		finally:
			call.cancel()

	async def list_upscalers(self) -> asset_pb.ListUpscalersResponse:
		"""The upscalers folder (architecture, scale) and the built-in upscalers."""
		return await self._assets.ListUpscalers(asset_pb.ListUpscalersRequest(), timeout=self.timeout)

	async def watch_job(self, job_id: str) -> AsyncGenerator[gen_pb.GenerateEvent, None]:
		"""Follows a queued or running job: its state so far, then its events to the end (leaving never cancels it)."""
		call = self._generation.WatchJob(gen_pb.WatchJobRequest(job_id=job_id), timeout=self.timeout)
		try:
			async for event in call:
				yield event
		finally:
			call.cancel()

	async def generate_images(self, prompt: str, **options: Unpack[GenerateOptions]) -> list[GeneratedImage]:
		return [GeneratedImage.from_event(e) async for e in self.generate(prompt, **options) if e.HasField('image')]

	async def cancel_job(self, job_id: str, finish_early: bool = False) -> gen_pb.JobState.ValueType:
		"""`finish_early`: a running job delivers its image as it is at the next step (A1111's interrupt)."""
		request = gen_pb.CancelJobRequest(job_id=job_id, finish_early=finish_early)
		response = await self._generation.CancelJob(request, timeout=self.timeout)
		return response.previous_state

	async def cancel_queued_jobs(self) -> list[str]:
		"""Cancels every queued job (the running one goes on); returns their ids."""
		request = gen_pb.CancelQueuedJobsRequest()
		return list((await self._generation.CancelQueuedJobs(request, timeout=self.timeout)).job_ids)

	async def tokenize_prompt(
		self, prompt: str, negative_prompt: str = '', model: str = '', styles: list[str] | None = None
	) -> gen_pb.TokenizePromptResponse:
		"""How Generate would read the prompts (tokens per 75-token chunk, weights, LoRA tags); nothing runs."""
		request = gen_pb.TokenizePromptRequest(
			prompt=prompt, negative_prompt=negative_prompt, model=model, styles=styles or []
		)
		return await self._generation.TokenizePrompt(request, timeout=self.timeout)

	async def list_embeddings(self, base: str = '') -> list[asset_pb.Asset]:
		"""The embeddings folder (a prompt names one by its file name); `base`: sd1, sd2 or sdxl only."""
		request = asset_pb.ListEmbeddingsRequest(base=BASES.get(base, model_pb.MODEL_BASE_UNSPECIFIED))
		return list((await self._assets.ListEmbeddings(request, timeout=self.timeout)).embeddings)

	async def list_vaes(self, base: str = '') -> list[asset_pb.Asset]:
		"""The vaes folder (GenerateRequest.vae names one); `base`: sd1, sd2 or sdxl only."""
		request = asset_pb.ListVaesRequest(base=BASES.get(base, model_pb.MODEL_BASE_UNSPECIFIED))
		return list((await self._assets.ListVaes(request, timeout=self.timeout)).vaes)

	async def list_controlnets(self, base: str = '') -> list[asset_pb.Asset]:
		"""The controlnets folder (GenerateRequest.controlnets names one); `base`: sd1, sd2 or sdxl only."""
		request = asset_pb.ListControlNetsRequest(base=BASES.get(base, model_pb.MODEL_BASE_UNSPECIFIED))
		return list((await self._assets.ListControlNets(request, timeout=self.timeout)).controlnets)

	async def parse_parameters(self, image: bytes = b'', text: str = '') -> gen_pb.ParseParametersResponse:
		"""The GenerateRequest in an image's metadata (A1111, ComfyUI, InvokeAI, ...) or a pasted A1111 infotext."""
		request = gen_pb.ParseParametersRequest(image=image, text=text)
		return await self._generation.ParseParameters(request, timeout=self.timeout)

	async def list_jobs(self) -> list[gen_pb.Job]:
		async def page(token: str) -> tuple[Iterable[gen_pb.Job], str]:
			response = await self._generation.ListJobs(gen_pb.ListJobsRequest(page_token=token), timeout=self.timeout)
			return response.jobs, response.next_page_token

		return await all_pages_async(page)

	async def system_info(self) -> sys_pb.GetSystemInfoResponse:
		return await self._system.GetSystemInfo(sys_pb.GetSystemInfoRequest(), timeout=self.timeout)

	async def list_models(self, base: str = '', loaded_only: bool = False, order: str = 'name') -> list[model_pb.Model]:
		"""Every model in the catalog (all pages); `base` sd1/sd2/sdxl, `order` name or last-used."""

		async def page(token: str) -> tuple[Iterable[model_pb.Model], str]:
			response = await self._models.ListModels(
				list_request(base, loaded_only, order, token), timeout=self.timeout
			)
			return response.models, response.next_page_token

		return await all_pages_async(page)

	async def get_model(self, model: str) -> model_pb.Model:
		"""By id, name or sha256 prefix (such as the 10-character AutoV2 hash)."""
		return (await self._models.GetModel(model_pb.GetModelRequest(model=model), timeout=self.timeout)).model

	async def refresh_models(self, restore_unregistered: bool = False) -> model_pb.RefreshModelsResponse:
		request = model_pb.RefreshModelsRequest(restore_unregistered=restore_unregistered)
		return await self._models.RefreshModels(request, timeout=self.timeout)

	async def load_model(self, model: str) -> model_pb.LoadModelResponse:
		return await self._models.LoadModel(model_pb.LoadModelRequest(model=model), timeout=self.timeout)

	async def unload_model(self, model: str) -> bool:
		request = model_pb.UnloadModelRequest(model=model)
		return (await self._models.UnloadModel(request, timeout=self.timeout)).unloaded

	async def update_model(
		self,
		model: str,
		*,
		display_name: str | None = None,
		tags: list[str] | None = None,
		defaults: model_pb.ModelDefaults | None = None,
	) -> model_pb.Model:
		"""Changes only the fields given; `defaults` replaces the model's sampler/steps/CFG defaults as a whole."""
		request = update_request(model, display_name, tags, defaults)
		return (await self._models.UpdateModel(request, timeout=self.timeout)).model

	async def delete_model(self, model: str, delete_files: bool = False) -> model_pb.Model:
		request = model_pb.DeleteModelRequest(model=model, delete_files=delete_files)
		return (await self._models.DeleteModel(request, timeout=self.timeout)).model

	async def download_model(
		self, url: str, file_name: str = '', sha256: str = '', overwrite: bool = False
	) -> AsyncGenerator[model_pb.DownloadEvent, None]:
		"""Streams progress, then the `completed` model; leaving the loop early stops the transfer."""
		call = self._models.DownloadModel(download_request(url, file_name, sha256, overwrite))
		try:
			async for event in call:
				yield event
		finally:
			call.cancel()
