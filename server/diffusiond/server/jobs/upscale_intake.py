"""Intake of an UpscaleImage request: fields checked, the image through the image guard (off the loop), the
upscaler resolved (a built-in one, or a usable model of the folder), the result's size checked against the pixel
cap."""

import asyncio

from diffusiond.server.catalog.upscalers import UpscalerCatalog
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.images import decode_image
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.tasks.upscale import (
	BUILTIN_SCALE,
	BUILTIN_UPSCALERS,
	DEFAULT_UPSCALER,
	UpscaleRequest,
	UpscaleSpec,
	target_size,
)

DEFAULT_QUALITY = 90


def builtin(name: str) -> str | None:
	"""The built-in upscaler `name` means (any case), else None."""
	return next((known for known in BUILTIN_UPSCALERS if known.lower() == name.lower()), None)


async def upscale_spec(request: UpscaleRequest, upscalers: UpscalerCatalog, limits: LimitsSettings) -> UpscaleSpec:
	problems = request.violations()
	if problems:
		raise InvalidArgumentError(problems)
	image = await asyncio.to_thread(decode_image, request.image, limits.max_image_pixels, 'image')
	width, height = image.size
	name = builtin(request.upscaler or DEFAULT_UPSCALER)
	file = None if name is not None else await upscalers.resolve(request.upscaler)
	scale = request.scale if request.scale is not None else float(file.scale) if file is not None else BUILTIN_SCALE
	to_width, to_height = target_size(width, height, scale)
	if to_width * to_height > limits.max_image_pixels:
		described = f'{to_width}x{to_height} ({to_width * to_height} pixels)'
		raise InvalidArgumentError(
			[
				FieldViolation(
					field='scale',
					description=f'the result would be {described}; at most {limits.max_image_pixels} pixels are '
					'allowed (limits.max_image_pixels): ask a smaller scale or send a smaller image',
				)
			]
		)
	tile, overlap = request.tiles()
	return UpscaleSpec(
		image=request.image,
		source_width=width,
		source_height=height,
		upscaler=name if name is not None else file.name if file is not None else '',
		file=file,
		width=to_width,
		height=to_height,
		tile_size=tile,
		tile_overlap=overlap,
		output_format=request.output_format,
		quality=request.quality if request.quality is not None else DEFAULT_QUALITY,
	)
