"""A job's ControlNet units: checked with the request's other fields, then resolved at intake (the ControlNet
suits the model; the control image through the image guard, at the job's size)."""

import asyncio
import math

from PIL import Image

from diffusiond.server.catalog.assets import ControlNetCatalog
from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.images import decode_image
from diffusiond.server.schemas import ControlRequest, ControlSpec, GenerateParams
from diffusiond.server.tasks import HiresRequest
from diffusiond.server.tasks.sources import png

MAX_CONTROLNETS = 4
PREPROCESSORS = ('none',)  # those that need no weights; the control image is used as it is


def control_checks(params: GenerateParams) -> list[tuple[str, str | None]]:
	checks: list[tuple[str, str | None]] = []
	if len(params.controlnets) > MAX_CONTROLNETS:
		checks.append(('controlnets', f'at most {MAX_CONTROLNETS} ControlNet units, got {len(params.controlnets)}'))
	if params.controlnets and isinstance(params.task, HiresRequest):
		checks.append(('controlnets', 'ControlNet with a hires fix is not supported yet; send one of the two'))
	for index, unit in enumerate(params.controlnets):
		field = f'controlnets[{index}]'
		if not unit.ref:
			checks.append((f'{field}.model', 'model is required: a ControlNet id, name or hash'))
		if not unit.image:
			checks.append((f'{field}.image', 'image is required: the control image (PNG, JPEG or WebP)'))
		if not (math.isfinite(unit.scale) and 0 <= unit.scale <= 2):
			checks.append((f'{field}.scale', f'scale must be between 0 and 2, got {unit.scale}'))
		if not (0 <= unit.start < unit.end <= 1):
			checks.append(
				(
					f'{field}.guidance_start',
					f'guidance must start and end within 0..1, start < end; got {unit.start}..{unit.end}',
				)
			)
		if unit.preprocessor not in PREPROCESSORS:
			checks.append((f'{field}.preprocessor', f'unknown preprocessor {unit.preprocessor!r}; known: none'))
	return checks


def _fitted(data: bytes, field: str, width: int, height: int, max_pixels: int) -> bytes:
	"""The control image at the job's size, as PNG (blocking: call through a thread)."""
	image = decode_image(data, max_pixels, field).convert('RGB')
	return png(image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS))


async def resolve_controls(
	units: list[ControlRequest], catalog: ControlNetCatalog, model: ModelInfo, size: tuple[int, int], max_pixels: int
) -> list[ControlSpec]:
	"""Each unit's ControlNet, checked to suit `model` (FAILED_PRECONDITION naming both), with its image fitted."""
	found = []
	for index, unit in enumerate(units):
		record = await catalog.resolve(unit.ref, model)
		image = await asyncio.to_thread(_fitted, unit.image, f'controlnets[{index}].image', *size, max_pixels)
		found.append(
			ControlSpec(
				id=record.id,
				name=record.name,
				path=(catalog.folder / record.path).parent,
				key=f'{record.id}:{record.size_bytes}:{record.mtime_ns}',
				sha256=record.sha256 or '',
				image=image,
				scale=unit.scale,
				start=unit.start,
				end=unit.end,
				preprocessor=unit.preprocessor,
			)
		)
	return found
