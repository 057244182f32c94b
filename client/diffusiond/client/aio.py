"""The asyncio client, with the same surface as the blocking one."""

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Self, Unpack

import grpc

from diffusiond.client.images import GeneratedImage
from diffusiond.client.request import CHANNEL_OPTIONS, GenerateOptions, build_generate_request, resolve_address
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc


class AsyncClient:
	"""asyncio client. `address` is host:port or unix:PATH; default $DIFFUSIOND_ADDRESS or localhost:50051."""

	def __init__(self, address: str | None = None, *, timeout: float | None = None) -> None:
		self.address = resolve_address(address)
		self.timeout = timeout
		self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
		self._generation = gen_grpc.GenerationServiceStub(self._channel)
		self._system = sys_grpc.SystemServiceStub(self._channel)

	async def __aenter__(self) -> Self:
		return self

	async def __aexit__(
		self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
	) -> None:
		await self.close()

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

	async def generate_images(self, prompt: str, **options: Unpack[GenerateOptions]) -> list[GeneratedImage]:
		return [GeneratedImage.from_event(e) async for e in self.generate(prompt, **options) if e.HasField('image')]

	async def cancel_job(self, job_id: str) -> gen_pb.JobState.ValueType:
		response = await self._generation.CancelJob(gen_pb.CancelJobRequest(job_id=job_id), timeout=self.timeout)
		return response.previous_state

	async def list_jobs(self) -> list[gen_pb.Job]:
		jobs: list[gen_pb.Job] = []
		token = ''
		while True:
			request = gen_pb.ListJobsRequest(page_token=token)
			response = await self._generation.ListJobs(request, timeout=self.timeout)
			jobs.extend(response.jobs)
			token = response.next_page_token
			if not token:
				return jobs

	async def system_info(self) -> sys_pb.GetSystemInfoResponse:
		return await self._system.GetSystemInfo(sys_pb.GetSystemInfoRequest(), timeout=self.timeout)
