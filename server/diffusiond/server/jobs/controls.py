"""A job's ControlNet units: checked with the request's other fields, then resolved at intake (the ControlNet
suits the model; the control image through the image guard, at the job's size)."""

import asyncio
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from diffusiond.server.catalog.asset_schemas import CONTROLNET_HASH_LENGTH, AssetLayout, AssetRecord
from diffusiond.server.catalog.controlnets import ControlNetCatalog
from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.images import decode_image
from diffusiond.server.schemas import ControlRequest, ControlSpec, GenerateParams
from diffusiond.server.tasks import HiresRequest, Txt2ImgRequest
from diffusiond.server.tasks.sources import png

MAX_CONTROLNETS = 4
PREPROCESSORS = ('none', 'canny')  # those that need no weights


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
			known = ', '.join(PREPROCESSORS)
			checks.append((f'{field}.preprocessor', f'unknown preprocessor {unit.preprocessor!r}; known: {known}'))
		elif unit.preprocessor == 'canny' and not (0 <= unit.low <= unit.high <= 255):
			checks.append(
				(f'{field}.low_threshold', f'thresholds must be 0 <= low <= high <= 255, got {unit.low}, {unit.high}')
			)
	return checks + refiner_checks(params)


def refiner_checks(params: GenerateParams) -> list[tuple[str, str | None]]:
	refiner = params.refiner
	if refiner is None:
		return []
	checks: list[tuple[str, str | None]] = []
	if not refiner.ref:
		checks.append(('refiner.model', 'model is required: the refiner model id, name or hash'))
	if not (math.isfinite(refiner.switch_at) and 0 < refiner.switch_at < 1):
		checks.append(('refiner.switch_at', f'switch_at must be above 0 and below 1, got {refiner.switch_at}'))
	if not isinstance(params.task, Txt2ImgRequest) or params.controlnets:
		checks.append(
			('refiner', 'the refiner pass is for plain text-to-image jobs (no init image, hires fix or ControlNet)')
		)
	return checks


def canny(image: Image.Image, low: float, high: float) -> Image.Image:
	"""The edge map A1111's canny preprocessor makes: cv2.Canny on the RGB pixels, as three equal channels."""
	edges = cv2.Canny(np.asarray(image), low, high)
	return Image.fromarray(np.stack([edges] * 3, axis=-1))


def _fitted(unit: ControlRequest, field: str, width: int, height: int, max_pixels: int) -> bytes:
	"""The control image at the job's size, preprocessed, as PNG (blocking: call through a thread)."""
	image = decode_image(unit.image, max_pixels, field).convert('RGB')
	if image.size != (width, height):
		image = image.resize((width, height), Image.Resampling.LANCZOS)
	return png(canny(image, unit.low, unit.high) if unit.preprocessor == 'canny' else image)


def _weights(path: Path, record: AssetRecord) -> Path:
	"""What the engine loads: an original-layout file itself, a diffusers ControlNet's folder."""
	return path if record.probe.layout is AssetLayout.LDM else path.parent


async def resolve_controls(
	units: list[ControlRequest], catalog: ControlNetCatalog, model: ModelInfo, size: tuple[int, int], max_pixels: int
) -> list[ControlSpec]:
	"""Each unit's ControlNet, checked to suit `model` (FAILED_PRECONDITION naming both), with its image fitted."""
	found = []
	for index, unit in enumerate(units):
		record = await catalog.resolve(unit.ref, model)
		image = await asyncio.to_thread(_fitted, unit, f'controlnets[{index}].image', *size, max_pixels)
		found.append(
			ControlSpec(
				id=record.id,
				name=record.name,
				path=_weights(catalog.folder / record.path, record),
				key=record.key,
				sha256=record.sha256 or '',
				image=image,
				scale=unit.scale,
				start=unit.start,
				end=unit.end,
				preprocessor=unit.preprocessor,
				thresholds=(unit.low, unit.high) if unit.preprocessor == 'canny' else None,
			)
		)
	return found


def unit_infotext(unit: ControlSpec) -> str:
	"""One unit as A1111's ControlNet extension writes it into the infotext."""
	named = f'{unit.name} [{unit.sha256[:CONTROLNET_HASH_LENGTH]}]' if unit.sha256 else unit.name
	text = f'Module: {unit.preprocessor}, Model: {named}, Weight: {unit.scale:g}'
	if unit.thresholds is not None:
		text += f', Threshold A: {unit.thresholds[0]:g}, Threshold B: {unit.thresholds[1]:g}'
	return f'{text}, Guidance Start: {unit.start:g}, Guidance End: {unit.end:g}'
