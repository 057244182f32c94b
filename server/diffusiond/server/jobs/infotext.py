"""The metadata every image carries: A1111's `parameters` text (so existing tools read it) and our own JSON.

The text is exactly what A1111 writes: the prompt; `Negative prompt: …` when there is one; then one line
of `Key: value` pairs, values holding `,` `:` or a newline JSON-quoted.
"""

import json
from datetime import datetime

from pydantic import BaseModel, Field

from diffusiond.server import __version__
from diffusiond.server.catalog.asset_schemas import TI_HASH_LENGTH, VAE_HASH_LENGTH
from diffusiond.server.catalog.schemas import AUTOV2_LENGTH, ModelInfo
from diffusiond.server.jobs.controls import unit_infotext
from diffusiond.server.prompting.lora_tags import tag_for
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.schemas import JobSpec
from diffusiond.server.tasks import Task

# The sampler A1111 would name for the model's own scheduler class, when a request left it unset.
_SCHEDULER_NAMES = {
	'PNDMScheduler': 'PNDM',
	'DDIMScheduler': 'DDIM',
	'EulerDiscreteScheduler': 'Euler',
	'EulerAncestralDiscreteScheduler': 'Euler a',
	'LMSDiscreteScheduler': 'LMS',
	'DPMSolverMultistepScheduler': 'DPM++ 2M',
	'UniPCMultistepScheduler': 'UniPC',
	'HeunDiscreteScheduler': 'Heun',
}


class EmbeddedModel(BaseModel):
	id: str
	name: str
	sha256: str | None = None


class EmbeddedLora(BaseModel):
	id: str
	name: str
	weight: float
	hash: str
	in_prompt: bool = False  # named by a tag in the prompt


class EmbeddedRecord(BaseModel):
	"""Our JSON in every image: enough to rebuild the image's history record from the file alone."""

	job_id: str
	index: int
	seed: int
	prompt: str
	negative_prompt: str
	steps: int
	sampler: str  # A1111's name, as Sampler values are
	scheduler: str
	schedule: str = 'Automatic'  # A1111's schedule type, as Schedule values are
	deep_cache: int = 0
	token_merging: float = 0.0
	fast_decode: bool = False
	guidance_scale: float
	clip_skip: int = 1
	width: int
	height: int
	model: EmbeddedModel
	loras: list[EmbeddedLora] = Field(default_factory=list)
	styles: list[str] = Field(default_factory=list)
	version: str = ''
	# Since 0.1.0's first wave these too (older images lack them: the defaults stand in).
	created_at: datetime | None = None
	seeds: list[int] = Field(default_factory=list)  # every seed of the job
	output_format: str = 'image/png'
	quality: int = 90
	task: Task | None = None  # the task and its parameters (not its source images)
	# What images of the first wave carried instead of `task`: read, never written.
	strength: float | None = None
	inpaint: bool = False
	mask_blur: int = 0
	mask_crop_padding: int | None = None


class ImageMetadata(BaseModel):
	parameters: str  # the A1111 text
	json_text: str  # our lossless record of the same, as JSON


def quote(value: str) -> str:
	"""A1111's `quote`: JSON-quoted when the value holds a comma, a colon or a newline."""
	if not any(char in value for char in ',:\n'):
		return value
	quoted: str = json.dumps(value, ensure_ascii=False)
	return quoted


def _sampler_name(spec: JobSpec, scheduler: str) -> str:
	if spec.sampler is not Sampler.UNSPECIFIED:
		return str(spec.sampler.value)
	return _SCHEDULER_NAMES.get(scheduler, scheduler)


def prompt_with_tags(spec: JobSpec) -> str:
	"""The prompt as A1111 writes it: every LoRA as a <lora:name:weight> tag (those the request gave in `loras`
	are added at the end), so A1111's "send to txt2img" applies them again."""
	added = ' '.join(tag_for(lora.name, lora.weight) for lora in spec.loras if not lora.in_prompt)
	return ' '.join(part for part in (spec.prompt, added) if part)


def image_metadata(
	spec: JobSpec,
	model: ModelInfo,
	scheduler: str,
	seed: int,
	index: int,
	job_id: str,
	created_at: datetime | None = None,
) -> ImageMetadata:
	fields: list[tuple[str, str]] = [
		('Steps', str(spec.steps)),
		('Sampler', _sampler_name(spec, scheduler)),
		('Schedule type', spec.schedule.value if spec.schedule is not Schedule.UNSPECIFIED else ''),
		('Token merging ratio', f'{spec.token_merging:g}' if spec.token_merging else ''),
		('DeepCache interval', str(spec.deep_cache) if spec.deep_cache > 1 else ''),
		('Decoder', 'TAESD' if spec.fast_decode else ''),
		('CFG scale', f'{spec.guidance_scale:g}'),
		('Seed', str(seed)),
		('Size', f'{spec.width}x{spec.height}'),
	]
	if model.sha256:
		fields.append(('Model hash', model.sha256[:AUTOV2_LENGTH]))
	fields.append(('Model', model.name))
	if spec.vae is not None:
		fields += [('VAE hash', spec.vae.sha256[:VAE_HASH_LENGTH]), ('VAE', spec.vae.file)]
	fields += spec.task.infotext()
	if spec.clip_skip > 1:  # A1111 writes it only when it is not the default
		fields.append(('Clip skip', str(spec.clip_skip)))
	fields += spec.task.extras()
	fields += [(f'ControlNet {index}', unit_infotext(unit)) for index, unit in enumerate(spec.controlnets)]
	if spec.refiner is not None:  # A1111's refiner fields
		refiner = spec.refiner.model
		named = f'{refiner.name} [{refiner.sha256[:AUTOV2_LENGTH]}]' if refiner.sha256 else refiner.name
		fields += [('Refiner', named), ('Refiner switch at', f'{spec.refiner.switch_at:g}')]
	if spec.loras:
		fields.append(
			('Lora hashes', ', '.join(f'{lora.name}: {lora.short_hash}' for lora in spec.loras if lora.short_hash))
		)
	if spec.embeddings:
		hashes = [
			(item.name.replace(':', '').replace(',', ''), item.sha256[:TI_HASH_LENGTH]) for item in spec.embeddings
		]
		fields.append(('TI hashes', ', '.join(f'{name}: {short}' for name, short in hashes if short)))
	if spec.styles:
		fields.append(('Styles array', json.dumps(spec.styles, ensure_ascii=False)))
	fields.append(('Version', f'diffusiond {__version__}'))
	lines = [prompt_with_tags(spec)]
	if spec.negative_prompt:
		lines.append(f'Negative prompt: {spec.negative_prompt}')
	lines.append(', '.join(f'{key}: {quote(value)}' for key, value in fields if value))
	record = EmbeddedRecord(
		job_id=job_id,
		index=index,
		seed=seed,
		prompt=spec.prompt,
		negative_prompt=spec.negative_prompt,
		steps=spec.steps,
		sampler=spec.sampler.value,
		scheduler=scheduler,
		schedule=spec.schedule.value,
		deep_cache=spec.deep_cache,
		token_merging=spec.token_merging,
		fast_decode=spec.fast_decode,
		guidance_scale=spec.guidance_scale,
		clip_skip=spec.clip_skip,
		width=spec.width,
		height=spec.height,
		model=EmbeddedModel(id=model.id, name=model.name, sha256=model.sha256),
		loras=[
			EmbeddedLora(id=x.id, name=x.name, weight=x.weight, hash=x.short_hash, in_prompt=x.in_prompt)
			for x in spec.loras
		],
		styles=spec.styles,
		version=__version__,
		created_at=created_at,
		seeds=spec.seeds,
		output_format=spec.output_format.value,
		quality=spec.quality,
		task=spec.task.without_sources(),
	)
	return ImageMetadata(parameters='\n'.join(lines), json_text=record.model_dump_json())
