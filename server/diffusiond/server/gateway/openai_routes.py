"""OpenAI's images API (`/v1/images/generations`, `/v1/images/edits`, `/v1/models`) on the daemon's models: the
`openai` SDKs and the tools built on them point their base URL here. OpenAI's model names (dall-e-2, dall-e-3,
gpt-image-1) mean the default model; `url` answers link to the image as history keeps it."""

import asyncio
import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import BaseModel

from diffusiond.server.errors import invalid
from diffusiond.server.gateway.a1111_schemas import Lenient
from diffusiond.server.gateway.context import Gateway
from diffusiond.server.gateway.jobs import Finished, b64, run_generation
from diffusiond.server.gateway.openai_masks import edit_sources
from diffusiond.server.schemas import GenerateParams
from diffusiond.server.tasks import task_request

OPENAI_MODELS = ('', 'dall-e-2', 'dall-e-3', 'gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2')
ResponseFormat = Literal['b64_json', 'url']


class GenerationsBody(Lenient):
	prompt: str
	model: str | None = None
	n: int = 1
	size: str | None = None
	response_format: ResponseFormat | None = None
	stream: bool = False


class ImageData(BaseModel):
	b64_json: str | None = None
	url: str | None = None
	revised_prompt: str | None = None


class ImagesAnswer(BaseModel):
	created: int
	data: list[ImageData]


def _size(size: str | None) -> tuple[int | None, int | None]:
	if size is None or size == 'auto':
		return None, None
	width, sep, height = size.lower().partition('x')
	if not sep or not width.isdigit() or not height.isdigit():
		raise invalid('size', f'size is WIDTHxHEIGHT (e.g. 512x512) or auto, got {size!r}')
	return int(width), int(height)


def _model(name: str | None) -> str:
	return '' if (name or '') in OPENAI_MODELS else name or ''


def _answer(finished: Finished, form: ResponseFormat | None, request: Request) -> ImagesAnswer:
	data = []
	for image in finished.images:
		if form == 'url':
			data.append(ImageData(url=f'{request.base_url}v1/images/files/{finished.job.id}/{image.index}'))
		else:
			data.append(ImageData(b64_json=b64(image.data)))
	return ImagesAnswer(created=int(time.time()), data=data)


def openai_routes(gateway: Gateway) -> APIRouter:
	router = APIRouter(tags=['OpenAI images API'])
	manager = gateway.manager
	max_pixels = gateway.settings.limits.max_image_pixels

	@router.post('/images/generations')
	async def generations(body: GenerationsBody, request: Request) -> ImagesAnswer:
		if body.stream:
			raise invalid('stream', 'streamed image generation is not supported; send stream false')
		width, height = _size(body.size)
		params = GenerateParams(
			model=_model(body.model), prompt=body.prompt, width=width, height=height, num_images=body.n
		)
		return _answer(await run_generation(manager, params, request), body.response_format, request)

	@router.post('/images/edits')
	async def edits(
		request: Request,
		prompt: Annotated[str, Form()],
		image: Annotated[UploadFile | None, File()] = None,
		images: Annotated[list[UploadFile] | None, File(alias='image[]')] = None,
		mask: Annotated[UploadFile | None, File()] = None,
		model: Annotated[str | None, Form()] = None,
		n: Annotated[int, Form()] = 1,
		size: Annotated[str | None, Form()] = None,
		response_format: Annotated[ResponseFormat | None, Form()] = None,
	) -> ImagesAnswer:
		source = image or (images[0] if images else None)
		if source is None:
			raise invalid('image', 'image is required: the PNG to edit (its transparent areas are edited)')
		data, mask_data = await source.read(), await mask.read() if mask is not None else b''
		init, painted = await asyncio.to_thread(edit_sources, data, mask_data, max_pixels)
		width, height = _size(size)
		task = task_request(init, painted, None, 0, None)
		params = GenerateParams(model=_model(model), prompt=prompt, width=width, height=height, num_images=n, task=task)
		return _answer(await run_generation(manager, params, request), response_format, request)

	@router.get('/images/files/{generation_id}/{index}')
	async def image_file(generation_id: str, index: int) -> Response:
		found = await gateway.history.image(generation_id, index, 0)
		return Response(content=found.data, media_type=found.mime_type)

	@router.get('/models')
	async def models() -> dict[str, object]:
		records = await gateway.catalog.entries()
		data = [
			{
				'id': record.name,
				'object': 'model',
				'created': int(record.added_at.timestamp()),
				'owned_by': 'diffusiond',
			}
			for record in records
		]
		return {'object': 'list', 'data': data}

	return router
