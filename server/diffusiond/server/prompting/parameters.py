"""The generation parameters of an image made elsewhere (A1111, ComfyUI, InvokeAI, Fooocus, NovelAI, or here),
or of a pasted A1111 infotext, as the fields of a Generate request: read with `sd-parsers`, which knows each
program's metadata layout, and mapped onto ours. What has no field here is listed, not dropped silently."""

import asyncio
import math
from pathlib import PurePosixPath

from PIL import Image
from pydantic import BaseModel, Field
from sd_parsers import ParserManager
from sd_parsers.data import PromptInfo
from sd_parsers.parsers import AUTOMATIC1111Parser

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.images import decode_image
from diffusiond.server.samplers import Sampler, Schedule, schedule_problem

# ComfyUI's sampler and scheduler names → A1111's (ours); others are listed as unknown.
COMFY_SAMPLERS = {
	('euler', 'normal'): Sampler.EULER,
	('euler', 'karras'): Sampler.EULER_KARRAS,
	('euler_ancestral', 'normal'): Sampler.EULER_A,
	('euler_ancestral', 'karras'): Sampler.EULER_A,
	('heun', 'normal'): Sampler.HEUN,
	('dpm_2', 'normal'): Sampler.DPM2,
	('dpm_2_ancestral', 'normal'): Sampler.DPM2_A,
	('lms', 'normal'): Sampler.LMS,
	('lms', 'karras'): Sampler.LMS_KARRAS,
	('dpmpp_2m', 'normal'): Sampler.DPMPP_2M,
	('dpmpp_2m', 'karras'): Sampler.DPMPP_2M_KARRAS,
	('dpmpp_sde', 'normal'): Sampler.DPMPP_SDE,
	('dpmpp_sde', 'karras'): Sampler.DPMPP_SDE_KARRAS,
	('dpmpp_2m_sde', 'normal'): Sampler.DPMPP_2M_SDE,
	('dpmpp_2m_sde', 'karras'): Sampler.DPMPP_2M_SDE_KARRAS,
	('ddim', 'normal'): Sampler.DDIM,
	('uni_pc', 'normal'): Sampler.UNIPC,
	('deis', 'normal'): Sampler.DEIS,
}
VAE_SUFFIXES = ('.safetensors', '.pt', '.ckpt', '.bin')
_USED = {'steps', 'cfg_scale', 'seed', 'scheduler', 'size', 'clip_skip', 'denoising_strength', 'denoise'}


class ParsedParameters(BaseModel):
	generator: str  # which program wrote them, as sd-parsers names it ('AUTOMATIC1111', 'COMFYUI', ...)
	prompt: str = ''
	negative_prompt: str = ''
	steps: int | None = None
	guidance_scale: float | None = None
	seed: int | None = None
	sampler: Sampler | None = None
	schedule: Schedule = Schedule.UNSPECIFIED  # A1111's "Schedule type", ComfyUI's scheduler
	width: int | None = None
	height: int | None = None
	model: str = ''  # the checkpoint's name as written, else its hash
	clip_skip: int | None = None
	vae: str = ''  # the VAE's name (A1111 writes the file name: its suffix is dropped), else its hash
	strength: float | None = None  # img2img's denoising strength (the init image is not in the metadata)
	unknown: list[str] = Field(default_factory=list)  # 'key: value' of what has no field here


def _number(value: object) -> float | None:
	try:
		number = float(str(value))
	except ValueError:
		return None
	return number if math.isfinite(number) else None


def _integer(value: object) -> int | None:
	number = _number(value)
	return int(number) if number is not None and number == int(number) else None


def _sampler(name: str, scheduler: str) -> Sampler | None:
	found = COMFY_SAMPLERS.get((name, scheduler or 'normal'))
	if found is not None:
		return found
	by_name = {sampler.value: sampler for sampler in Sampler}
	if scheduler.lower() == 'karras' and 'Karras' not in name:  # A1111 1.9+ writes "Schedule type" apart
		return by_name.get(f'{name} Karras')
	return by_name.get(name)


def _schedule(parsed: ParsedParameters, scheduler: str) -> None:
	"""A1111's schedule type ('SGM Uniform') or ComfyUI's scheduler ('sgm_uniform'), where it goes with the sampler
	(Karras is already in a "… Karras" sampler); anything else is listed as unknown."""
	wanted = scheduler.strip().lower().replace(' ', '_')
	sampler = parsed.sampler or Sampler.UNSPECIFIED
	if wanted in ('', 'automatic', 'normal') or (wanted == 'karras' and sampler.name.endswith('_KARRAS')):
		return
	found = next((schedule for schedule in Schedule if schedule.value.lower().replace(' ', '_') == wanted), None)
	if found is None or schedule_problem(sampler, found) is not None:
		parsed.unknown.append(f'Schedule type: {scheduler}')
		return
	parsed.schedule = found


def _size(parsed: ParsedParameters, info: PromptInfo) -> None:
	latent = info.metadata.get('EmptyLatentImage') if isinstance(info.metadata, dict) else None
	if isinstance(latent, list) and latent and isinstance(latent[0], dict):
		parsed.width, parsed.height = _integer(latent[0].get('width')), _integer(latent[0].get('height'))


def from_prompt_info(info: PromptInfo) -> ParsedParameters:
	parsed = ParsedParameters(
		generator=info.generator.name, prompt=info.full_prompt, negative_prompt=info.full_negative_prompt
	)
	sampler = info.samplers[0] if info.samplers else None
	params: dict[str, object] = dict(sampler.parameters) if sampler is not None else {}
	metadata: dict[str, object] = {str(key): value for key, value in info.metadata.items()}
	size = str(metadata.pop('Size', params.get('size', '')))
	if 'x' in size:
		width, _, height = size.partition('x')
		parsed.width, parsed.height = _integer(width), _integer(height)
	else:
		_size(parsed, info)
	metadata.pop('EmptyLatentImage', None)
	parsed.steps = _integer(params.get('steps'))
	parsed.guidance_scale = _number(params.get('cfg_scale'))
	parsed.seed = _integer(params.get('seed'))
	if sampler is not None:
		parsed.sampler = _sampler(sampler.name, str(params.get('scheduler', '')))
		if parsed.sampler is None:
			parsed.unknown.append(f'Sampler: {sampler.name} {params.get("scheduler", "")}'.strip())
		else:
			_schedule(parsed, str(params.get('scheduler', '')))
		if sampler.model is not None:
			parsed.model = sampler.model.name or sampler.model.hash or ''
	parsed.clip_skip = _integer(metadata.pop('Clip skip', None))
	vae, vae_hash = str(metadata.pop('VAE', '')), str(metadata.pop('VAE hash', ''))
	parsed.vae = PurePosixPath(vae).stem if vae.lower().endswith(VAE_SUFFIXES) else vae or vae_hash
	metadata.pop('TI hashes', None)  # the prompt names its embeddings; the hashes only confirm them
	strength = _number(metadata.pop('Denoising strength', params.get('denoise')))
	parsed.strength = strength if strength is not None and strength < 1 else None
	parsed.unknown += [f'{key}: {value}' for key, value in params.items() if key not in _USED]
	parsed.unknown += [f'{key}: {value}' for key, value in metadata.items()]
	return parsed


def parse_image(data: bytes, max_pixels: int) -> ParsedParameters:
	"""The parameters in an image's metadata (blocking: call through a thread)."""
	image: Image.Image = decode_image(data, max_pixels, 'image')  # the one guard for images from outside
	info = ParserManager().parse(image)
	if info is None:
		raise InvalidArgumentError(
			[FieldViolation(field='image', description='the image carries no generation parameters any reader knows')]
		)
	return from_prompt_info(info)


def parse_text(text: str) -> ParsedParameters:
	"""A pasted A1111 infotext (what "PNG info" shows)."""
	try:
		info = AUTOMATIC1111Parser().parse({'parameters': text})
	except Exception as exc:  # sd-parsers' ParserError, and whatever a hostile text makes it raise
		raise InvalidArgumentError(
			[FieldViolation(field='text', description=f'not an A1111 infotext (prompt, then "Steps: …"): {exc}')]
		) from None
	return from_prompt_info(info)


async def read_parameters(image: bytes, text: str, max_pixels: int) -> ParsedParameters:
	"""ParseParameters: exactly one of an image and a pasted text; image work off the event loop."""
	if bool(image) == bool(text):
		raise InvalidArgumentError(
			[FieldViolation(field='image', description='send an image or a text (an A1111 infotext), one of the two')]
		)
	if image:
		return await asyncio.to_thread(parse_image, image, max_pixels)
	return parse_text(text)
