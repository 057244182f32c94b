"""Validates a generation request against the configured limits, diffusers `check_inputs` style.

Every rule is checked before a job is queued; all violations are reported at once, each naming the
field, the rule and the value received.
"""

import math
import secrets

from pydantic import BaseModel, Field

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.schemas import GenerateParams, ImageFormat, JobSpec, LoraSpec, Sampler
from diffusiond.server.settings import LimitsSettings

DEFAULT_STRENGTH = 0.75
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 7.5
DEFAULT_QUALITY = 90
MAX_SEED = 2**63 - 1
MAX_LORA_WEIGHT = 2.0
MAX_MASK_BLUR = 64
MAX_MASK_CROP_PADDING = 1024


class Prompts(BaseModel):
	"""The prompts as the pipeline sees them (styles expanded, trigger words added) and the styles used."""

	prompt: str
	negative_prompt: str
	styles: list[str] = Field(default_factory=list)


_RANDOM_SEED_BITS = 32  # random seeds stay in the 32-bit range users know from A1111


def _check_size(field: str, value: int | None, limits: LimitsSettings) -> str | None:
	if value is None:
		return None
	if value % 8 or not limits.min_size <= value <= limits.max_size:
		return f'{field} must be a multiple of 8 between {limits.min_size} and {limits.max_size}, got {value}'
	return None


def _violations(params: GenerateParams, limits: LimitsSettings) -> list[FieldViolation]:
	checks: list[tuple[str, str | None]] = [
		('width', _check_size('width', params.width, limits)),
		('height', _check_size('height', params.height, limits)),
	]
	for field, text in (('prompt', params.prompt), ('negative_prompt', params.negative_prompt)):
		if len(text) > limits.max_prompt_chars:
			checks.append((field, f'{field} must be at most {limits.max_prompt_chars} characters, got {len(text)}'))
		if '\x00' in text:
			checks.append((field, f'{field} must not contain NUL characters'))
	if params.steps is not None and not 1 <= params.steps <= limits.max_steps:
		checks.append(('steps', f'steps must be between 1 and {limits.max_steps}, got {params.steps}'))
	cfg = params.guidance_scale
	if cfg is not None and (not math.isfinite(cfg) or not 0 <= cfg <= limits.max_guidance):
		checks.append(
			('guidance_scale', f'guidance_scale must be finite and between 0 and {limits.max_guidance}, got {cfg}')
		)
	count = params.num_images
	if count is not None and not 1 <= count <= limits.max_images:
		checks.append(('num_images', f'num_images must be between 1 and {limits.max_images}, got {count}'))
	seed = params.seed
	if seed is not None and not 0 <= seed <= MAX_SEED - (count or 1) + 1:
		checks.append(('seed', f'seed must be between 0 and 2^63-{count or 1} (unset = random), got {seed}'))
	quality = params.quality
	if quality is not None and not 1 <= quality <= 100:
		checks.append(('quality', f'quality must be between 1 and 100, got {quality}'))
	if quality is not None and params.output_format is ImageFormat.PNG:
		checks.append(('quality', 'quality applies to JPEG and WebP only; leave it unset for PNG'))
	checks += _lora_checks(params, limits)
	checks.append(('strength', _check_strength(params)))
	checks += _mask_checks(params)
	if len(params.styles) > limits.max_styles:
		checks.append(('styles', f'at most {limits.max_styles} styles per request, got {len(params.styles)}'))
	if any(not style for style in params.styles):
		checks.append(('styles', 'a style is named by its id or name; got an empty one'))
	return [FieldViolation(field=field, description=text) for field, text in checks if text is not None]


def _check_strength(params: GenerateParams) -> str | None:
	strength = params.strength
	if strength is None:
		return None
	if not params.init_image:
		return 'strength applies to img2img only: send init_image too, or leave strength unset'
	if not math.isfinite(strength) or not 0 < strength <= 1:
		return f'strength must be above 0 and at most 1, got {strength}'
	return None


def _mask_checks(params: GenerateParams) -> list[tuple[str, str | None]]:
	checks: list[tuple[str, str | None]] = []
	if params.mask_image and not params.init_image:
		checks.append(('mask_image', 'mask_image masks an init_image: send init_image too'))
	for field, value, most in (
		('mask_blur', params.mask_blur or None, MAX_MASK_BLUR),
		('mask_crop_padding', params.mask_crop_padding, MAX_MASK_CROP_PADDING),
	):
		if value is None:
			continue
		if not params.mask_image:
			checks.append((field, f'{field} applies to inpainting only: send mask_image too, or leave it unset'))
		elif value > most:
			checks.append((field, f'{field} must be at most {most} pixels, got {value}'))
	return checks


def _lora_checks(params: GenerateParams, limits: LimitsSettings) -> list[tuple[str, str | None]]:
	checks: list[tuple[str, str | None]] = []
	if len(params.loras) > limits.max_loras:
		checks.append(('loras', f'at most {limits.max_loras} LoRAs per request, got {len(params.loras)}'))
	seen: set[str] = set()
	for index, lora in enumerate(params.loras):
		field = f'loras[{index}]'
		if not lora.ref:
			checks.append((f'{field}.lora', 'lora is required: an id, name or hash'))
		elif lora.ref in seen:
			checks.append((f'{field}.lora', f'{lora.ref!r} is named twice; give each LoRA once with its weight'))
		seen.add(lora.ref)
		weight = lora.weight
		if weight is not None and (not math.isfinite(weight) or not 0 <= weight <= MAX_LORA_WEIGHT):
			checks.append((f'{field}.weight', f'weight must be between 0 and {MAX_LORA_WEIGHT}, got {weight}'))
	return checks


def check(params: GenerateParams, limits: LimitsSettings) -> None:
	"""Raises InvalidArgumentError naming every violated rule."""
	violations = _violations(params, limits)
	if violations:
		raise InvalidArgumentError(violations)


def resolve(
	params: GenerateParams, model: ModelInfo, loras: list[LoraSpec] | None = None, prompts: Prompts | None = None
) -> JobSpec:
	"""Resolves every default of checked `params`: the request's value, else the model's default, else ours."""
	seed = params.seed if params.seed is not None else secrets.randbits(_RANDOM_SEED_BITS)
	count = params.num_images or 1
	defaults = model.defaults
	guidance = params.guidance_scale if params.guidance_scale is not None else defaults.guidance_scale
	sampler = params.sampler if params.sampler is not Sampler.UNSPECIFIED else defaults.sampler
	return JobSpec(
		model=model.name,
		prompt=params.prompt if prompts is None else prompts.prompt,
		negative_prompt=params.negative_prompt if prompts is None else prompts.negative_prompt,
		width=params.width or model.native_size,
		height=params.height or model.native_size,
		steps=params.steps or defaults.steps or DEFAULT_STEPS,
		guidance_scale=guidance if guidance is not None else DEFAULT_GUIDANCE,
		sampler=sampler or Sampler.UNSPECIFIED,
		seeds=[seed + i for i in range(count)],
		output_format=params.output_format,
		quality=params.quality or DEFAULT_QUALITY,
		loras=loras or [],
		styles=prompts.styles if prompts else [],
		preview_every=params.preview_every,
		strength=(params.strength or DEFAULT_STRENGTH) if params.init_image else None,
		inpaint=params.inpaint,
		mask_blur=params.mask_blur,
		mask_crop_padding=params.mask_crop_padding,
	)
