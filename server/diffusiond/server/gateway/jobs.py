"""A job run to its end for an HTTP request: submitted like Generate, its images gathered from its stream. A
client that hangs up cancels it (as a gRPC caller that goes away does); it is in history and WatchJob/CancelJob
see it like any other."""

import asyncio
import base64
import contextlib
import logging

from fastapi import Request
from pydantic import BaseModel, ConfigDict

from diffusiond.server.errors import JobFailedError, invalid
from diffusiond.server.events import CompletedEvent, ImageEvent
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import GenerateParams
from diffusiond.server.tasks.upscale import UpscaleRequest

log = logging.getLogger(__name__)
_POLL_S = 0.25  # how often a waiting request checks that its client is still there


class Finished(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	job: Work
	images: list[ImageEvent]
	completed: CompletedEvent


def decode_b64(text: str, field: str) -> bytes:
	"""A base64 image as A1111's and OpenAI's clients send it (a `data:image/…;base64,` prefix allowed)."""
	if text.startswith(('http://', 'https://')):
		raise invalid(field, f'{field}: URLs are not fetched; send base64')
	data = text.split(',', 1)[1] if text.startswith('data:') else text
	try:
		return base64.b64decode(data, validate=True)
	except ValueError:
		raise invalid(field, f'{field} is not base64') from None


def b64(data: bytes) -> str:
	return base64.b64encode(data).decode()


async def _watch(request: Request, manager: PipelineManager, job: Work) -> None:
	while not job.finished:
		if await request.is_disconnected():
			log.info('job %s: the HTTP client went away', job.id)
			manager.abandon(job, 'its HTTP client went away')
			return
		await asyncio.sleep(_POLL_S)


async def _gather(manager: PipelineManager, job: Work, request: Request) -> Finished:
	watcher = asyncio.create_task(_watch(request, manager, job))
	images: list[ImageEvent] = []
	try:
		async with contextlib.aclosing(manager.follow(job)) as events:  # closed here, not whenever it is collected
			async for event in events:
				if isinstance(event, ImageEvent):
					images.append(event)
				elif isinstance(event, CompletedEvent):
					return Finished(job=job, images=images, completed=event)
	finally:
		watcher.cancel()
		with contextlib.suppress(asyncio.CancelledError):
			await watcher
	raise JobFailedError(f'job {job.id} ended without its completed event')


async def run_generation(manager: PipelineManager, params: GenerateParams, request: Request) -> Finished:
	return await _gather(manager, await manager.submit(params), request)


async def run_upscale(manager: PipelineManager, upscale: UpscaleRequest, request: Request) -> Finished:
	return await _gather(manager, await manager.submit_upscale(upscale), request)
