"""GenerationService: Generate and UpscaleImage (server streaming), CancelJob, ListJobs, WatchJob."""

import uuid
from collections.abc import AsyncIterator

import grpc

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.listing import window
from diffusiond.server.prompting.parameters import read_parameters
from diffusiond.server.schemas import GenerateParams
from diffusiond.server.services.convert import params_from_pb, upscale_from_pb
from diffusiond.server.services.event_convert import event_to_pb, job_to_pb, state_to_pb, states_from_pb
from diffusiond.server.services.paging import decode_token, next_token, page_size
from diffusiond.server.services.prompt_convert import check_to_pb, parsed_to_pb
from diffusiond.server.settings import LimitsSettings
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

GenerateContext = grpc.aio.ServicerContext[gen_pb.GenerateRequest, gen_pb.GenerateEvent]


def _job_id(value: str) -> str:
	try:
		return str(uuid.UUID(value))
	except ValueError:
		raise InvalidArgumentError(
			[
				FieldViolation(
					field='job_id', description=f'job_id must be a job id (a UUID) from Generate, got {value!r}'
				)
			]
		) from None


async def stream_job(
	manager: PipelineManager, params: GenerateParams, deadline_s: float | None = None
) -> AsyncIterator[gen_pb.GenerateEvent]:
	"""Queues a job and streams its events; a caller that goes away cancels it (unless `keep_running`)."""
	job = await manager.submit(params, deadline_s)
	async for event in manager.follow(job, params.keep_running):
		yield event_to_pb(job.id, event)


class GenerationService(gen_grpc.GenerationServiceServicer):
	def __init__(self, manager: PipelineManager, limits: LimitsSettings) -> None:
		self._manager = manager
		self._limits = limits

	async def Generate(
		self, request: gen_pb.GenerateRequest, context: GenerateContext
	) -> AsyncIterator[gen_pb.GenerateEvent]:
		async for event in stream_job(self._manager, params_from_pb(request), context.time_remaining()):
			yield event

	async def UpscaleImage(
		self,
		request: gen_pb.UpscaleImageRequest,
		context: grpc.aio.ServicerContext[gen_pb.UpscaleImageRequest, gen_pb.GenerateEvent],
	) -> AsyncIterator[gen_pb.GenerateEvent]:
		job = await self._manager.submit_upscale(upscale_from_pb(request))
		async for event in self._manager.follow(job):
			yield event_to_pb(job.id, event)

	async def CancelJob(
		self,
		request: gen_pb.CancelJobRequest,
		context: grpc.aio.ServicerContext[gen_pb.CancelJobRequest, gen_pb.CancelJobResponse],
	) -> gen_pb.CancelJobResponse:
		previous = await self._manager.directory.cancel(_job_id(request.job_id), request.finish_early)
		return gen_pb.CancelJobResponse(previous_state=state_to_pb(previous))

	async def ListJobs(
		self,
		request: gen_pb.ListJobsRequest,
		context: grpc.aio.ServicerContext[gen_pb.ListJobsRequest, gen_pb.ListJobsResponse],
	) -> gen_pb.ListJobsResponse:
		offset, size = decode_token(request.page_token), page_size(request.page_size)
		states = states_from_pb(request.states)
		listed = await self._manager.directory.listing(states, request.include_finished, offset + size + 1)
		found = window(listed, offset, size)
		return gen_pb.ListJobsResponse(jobs=[job_to_pb(job) for job in found.items], next_page_token=next_token(found))

	async def CancelQueuedJobs(
		self,
		request: gen_pb.CancelQueuedJobsRequest,
		context: grpc.aio.ServicerContext[gen_pb.CancelQueuedJobsRequest, gen_pb.CancelQueuedJobsResponse],
	) -> gen_pb.CancelQueuedJobsResponse:
		return gen_pb.CancelQueuedJobsResponse(job_ids=await self._manager.directory.cancel_queued())

	async def TokenizePrompt(
		self,
		request: gen_pb.TokenizePromptRequest,
		context: grpc.aio.ServicerContext[gen_pb.TokenizePromptRequest, gen_pb.TokenizePromptResponse],
	) -> gen_pb.TokenizePromptResponse:
		found = await self._manager.check_prompt(
			request.model, request.prompt, request.negative_prompt, list(request.styles)
		)
		return check_to_pb(found)

	async def ParseParameters(
		self,
		request: gen_pb.ParseParametersRequest,
		context: grpc.aio.ServicerContext[gen_pb.ParseParametersRequest, gen_pb.ParseParametersResponse],
	) -> gen_pb.ParseParametersResponse:
		found = await read_parameters(request.image, request.text, self._limits.max_image_pixels)
		return parsed_to_pb(found)

	async def WatchJob(
		self,
		request: gen_pb.WatchJobRequest,
		context: grpc.aio.ServicerContext[gen_pb.WatchJobRequest, gen_pb.GenerateEvent],
	) -> AsyncIterator[gen_pb.GenerateEvent]:
		job = await self._manager.directory.find(_job_id(request.job_id))
		subscription = job.channel.subscribe()
		try:
			async for event in subscription.events():
				yield event_to_pb(job.id, event)
		finally:  # a watcher leaving never touches the job
			job.channel.unsubscribe(subscription)
