"""A1111's generation routes: txt2img, img2img, progress, interrupt/skip, options, png-info, extra-single-image."""

import asyncio
import contextlib

from fastapi import APIRouter, Request

from diffusiond.server.errors import DiffusiondError, invalid
from diffusiond.server.gateway.a1111_images import infotexts, inverted_mask, png_info
from diffusiond.server.gateway.a1111_params import (
	NO_UPSCALER,
	img2img_params,
	info_json,
	model_ref,
	timestamp,
	title_of,
	txt2img_params,
)
from diffusiond.server.gateway.a1111_schemas import (
	ExtrasBody,
	ExtrasResponse,
	ImagesResponse,
	Img2ImgBody,
	PngInfoBody,
	PngInfoResponse,
	ProcessingBody,
	ProgressResponse,
	ProgressState,
	Txt2ImgBody,
)
from diffusiond.server.gateway.context import Gateway
from diffusiond.server.gateway.jobs import Finished, b64, decode_b64, run_generation, run_upscale
from diffusiond.server.tasks.upscale import UpscaleRequest


async def _answer(finished: Finished, body: ProcessingBody, hidden: set[str]) -> ImagesResponse:
	data = [image.data for image in finished.images]
	texts = await asyncio.to_thread(infotexts, data)
	return ImagesResponse(
		images=[b64(item) for item in data] if body.send_images else [],
		parameters=body.model_dump(mode='json', exclude=hidden),
		info=info_json(finished, texts),
	)


def _extras_request(body: ExtrasBody) -> UpscaleRequest:
	if body.resize_mode != 0:
		raise invalid('resize_mode', 'resize_mode 0 (upscale by upscaling_resize) is supported; 1 is not')
	for field in ('extras_upscaler_2_visibility', 'gfpgan_visibility', 'codeformer_visibility'):
		if getattr(body, field):
			raise invalid(field, f'{field} is not supported here (no second upscaler, no face restoration); send 0')
	upscaler = '' if body.upscaler_1.lower() == NO_UPSCALER else body.upscaler_1
	return UpscaleRequest(image=decode_b64(body.image, 'image'), upscaler=upscaler, scale=body.upscaling_resize)


def a1111_routes(gateway: Gateway) -> APIRouter:
	router = APIRouter(tags=['A1111 web API'])
	manager = gateway.manager
	preview = gateway.settings.http.preview_every
	max_pixels = gateway.settings.limits.max_image_pixels

	@router.post('/txt2img')
	async def txt2img(body: Txt2ImgBody, request: Request) -> ImagesResponse:
		finished = await run_generation(manager, txt2img_params(body, preview), request)
		return await _answer(finished, body, set())

	@router.post('/img2img')
	async def img2img(body: Img2ImgBody, request: Request) -> ImagesResponse:
		if not body.init_images:
			raise invalid('init_images', 'init_images is required: a list with one base64 image')
		init = decode_b64(body.init_images[0], 'init_images[0]')
		mask = decode_b64(body.mask, 'mask') if body.mask else b''
		if mask and body.inpainting_mask_invert:
			mask = await asyncio.to_thread(inverted_mask, mask, max_pixels)
		finished = await run_generation(manager, img2img_params(body, init, mask, preview), request)
		return await _answer(finished, body, set() if body.include_init_images else {'init_images', 'mask'})

	@router.get('/progress')
	async def progress(skip_current_image: bool = False) -> ProgressResponse:
		running, waiting = manager.queue.running(), manager.queue.depth
		if not running:
			return ProgressResponse(progress=0.0, eta_relative=0.0, state=ProgressState(job_count=waiting))
		job = running[0]
		latest = job.channel.latest_progress()
		step, total = (latest.step, latest.total_steps) if latest is not None else (0, 0)
		shown = None if skip_current_image else job.channel.latest_preview()
		state = ProgressState(
			job=job.id,
			job_count=len(running) + waiting,
			job_timestamp=timestamp(job.created_at),
			sampling_step=step,
			sampling_steps=total,
			interrupted=job.finish_early.is_set(),
		)
		return ProgressResponse(
			progress=min(1.0, step / total) if total else 0.0,
			eta_relative=latest.eta_s if latest is not None else 0.0,
			state=state,
			current_image=b64(shown.data) if shown is not None else None,
		)

	async def finish_early() -> dict[str, str]:
		for job in manager.queue.running():
			with contextlib.suppress(DiffusiondError):  # it may end meanwhile
				manager.queue.cancel(job.id, finish_early=True)
		return {}

	router.add_api_route('/interrupt', finish_early, methods=['POST'])
	router.add_api_route('/skip', finish_early, methods=['POST'])

	@router.get('/options')
	async def get_options() -> dict[str, object]:
		default = await gateway.catalog.default()
		return {
			'sd_model_checkpoint': title_of(default.name, default.path, default.sha256) if default else None,
			'sd_checkpoint_hash': default.sha256 if default else None,
			'sd_vae': 'Automatic',
			'CLIP_stop_at_last_layers': 1,
			'samples_format': 'png',
			'live_previews_enable': preview > 0,
			'show_progress_every_n_steps': preview,
		}

	@router.post('/options')
	async def set_options(body: dict[str, object]) -> None:
		checkpoint = body.get('sd_model_checkpoint')
		if checkpoint is None:
			return
		if not isinstance(checkpoint, str):
			raise invalid('sd_model_checkpoint', 'sd_model_checkpoint is a checkpoint title (GET /sdapi/v1/sd-models)')
		await manager.set_default(model_ref(checkpoint))

	@router.post('/png-info')
	async def read_png_info(body: PngInfoBody) -> PngInfoResponse:
		data = decode_b64(body.image.strip(), 'image')
		text, items, parameters = await asyncio.to_thread(png_info, data, max_pixels)
		return PngInfoResponse(info=text, items=items, parameters=parameters)

	@router.post('/extra-single-image')
	async def extra_single_image(body: ExtrasBody, request: Request) -> ExtrasResponse:
		finished = await run_upscale(manager, _extras_request(body), request)
		image = finished.images[0]
		info = f'<p>Upscaler: {body.upscaler_1}, {image.width}x{image.height}</p>'
		return ExtrasResponse(image=b64(image.data), html_info=info)

	return router
