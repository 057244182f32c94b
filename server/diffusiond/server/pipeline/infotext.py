"""The metadata every image carries: A1111's `parameters` text (so existing tools read it) and our own JSON.

The text is exactly what A1111 writes: the prompt; `Negative prompt: …` when there is one; then one line
of `Key: value` pairs, values holding `,` `:` or a newline JSON-quoted.
"""

import json

from pydantic import BaseModel

from diffusiond.server import __version__
from diffusiond.server.catalog.schemas import AUTOV2_LENGTH, ModelInfo
from diffusiond.server.schemas import JobSpec, Sampler

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


def image_metadata(
	spec: JobSpec, model: ModelInfo, scheduler: str, seed: int, index: int, job_id: str
) -> ImageMetadata:
	fields: list[tuple[str, str]] = [
		('Steps', str(spec.steps)),
		('Sampler', _sampler_name(spec, scheduler)),
		('CFG scale', f'{spec.guidance_scale:g}'),
		('Seed', str(seed)),
		('Size', f'{spec.width}x{spec.height}'),
	]
	if model.sha256:
		fields.append(('Model hash', model.sha256[:AUTOV2_LENGTH]))
	fields.append(('Model', model.name))
	if spec.strength is not None:
		fields.append(('Denoising strength', f'{spec.strength:g}'))
	if spec.inpaint:
		fields.append(('Inpaint', 'masked area'))
		if spec.mask_blur:
			fields.append(('Mask blur', str(spec.mask_blur)))
		if spec.mask_crop_padding is not None:
			fields += [('Inpaint area', 'Only masked'), ('Masked area padding', str(spec.mask_crop_padding))]
	if spec.loras:
		fields.append(
			('Lora hashes', ', '.join(f'{lora.name}: {lora.short_hash}' for lora in spec.loras if lora.short_hash))
		)
	if spec.styles:
		fields.append(('Styles array', json.dumps(spec.styles, ensure_ascii=False)))
	fields.append(('Version', f'diffusiond {__version__}'))
	lines = [spec.prompt]
	if spec.negative_prompt:
		lines.append(f'Negative prompt: {spec.negative_prompt}')
	lines.append(', '.join(f'{key}: {quote(value)}' for key, value in fields if value))
	record = {
		'job_id': job_id,
		'index': index,
		'seed': seed,
		'prompt': spec.prompt,
		'negative_prompt': spec.negative_prompt,
		'steps': spec.steps,
		'sampler': spec.sampler.value,
		'scheduler': scheduler,
		'guidance_scale': spec.guidance_scale,
		'width': spec.width,
		'height': spec.height,
		'model': {'id': model.id, 'name': model.name, 'sha256': model.sha256},
		'loras': [{'id': x.id, 'name': x.name, 'weight': x.weight, 'hash': x.short_hash} for x in spec.loras],
		'styles': spec.styles,
		'version': __version__,
	}
	return ImageMetadata(parameters='\n'.join(lines), json_text=json.dumps(record, ensure_ascii=False))
