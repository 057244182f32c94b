"""The blocking client."""

from collections.abc import Iterator
from types import TracebackType
from typing import Self, Unpack

import grpc

from diffusiond.client.images import GeneratedImage
from diffusiond.client.request import CHANNEL_OPTIONS, GenerateOptions, build_generate_request, resolve_address
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc


class Client:
	"""Blocking client. `address` is host:port or unix:PATH; default $DIFFUSIOND_ADDRESS or localhost:50051."""

	def __init__(self, address: str | None = None, *, timeout: float | None = None) -> None:
		self.address = resolve_address(address)
		self.timeout = timeout
		self._channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
		self._generation = gen_grpc.GenerationServiceStub(self._channel)
		self._system = sys_grpc.SystemServiceStub(self._channel)

	def __enter__(self) -> Self:
		return self

	def __exit__(
		self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
	) -> None:
		self.close()

	def close(self) -> None:
		self._channel.close()

	def generate(self, prompt: str, **options: Unpack[GenerateOptions]) -> Iterator[gen_pb.GenerateEvent]:
		"""Streams the job's events (queued, started, progress, image, completed)."""
		request = build_generate_request(prompt, **options)
		yield from self._generation.Generate(request, timeout=self.timeout)

	def generate_images(self, prompt: str, **options: Unpack[GenerateOptions]) -> list[GeneratedImage]:
		"""Runs a job to the end and returns its images."""
		events = self.generate(prompt, **options)
		return [GeneratedImage.from_event(event) for event in events if event.HasField('image')]

	def cancel_job(self, job_id: str) -> gen_pb.JobState.ValueType:
		request = gen_pb.CancelJobRequest(job_id=job_id)
		return self._generation.CancelJob(request, timeout=self.timeout).previous_state

	def list_jobs(self) -> list[gen_pb.Job]:
		jobs: list[gen_pb.Job] = []
		token = ''
		while True:
			response = self._generation.ListJobs(gen_pb.ListJobsRequest(page_token=token), timeout=self.timeout)
			jobs.extend(response.jobs)
			token = response.next_page_token
			if not token:
				return jobs

	def system_info(self) -> sys_pb.GetSystemInfoResponse:
		return self._system.GetSystemInfo(sys_pb.GetSystemInfoRequest(), timeout=self.timeout)
