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


def _prompt_checks(texts: tuple[tuple[str, str], ...], limits: LimitsSettings) -> list[tuple[str, str | None]]:
	checks: list[tuple[str, str | None]] = []
	for field, text in texts:
		if len(text) > limits.max_prompt_chars:
			checks.append((field, f'{field} must be at most {limits.max_prompt_chars} characters, got {len(text)}'))
		if '\x00' in text:
			checks.append((field, f'{field} must not contain NUL characters'))
	return checks


def _steps_problem(steps: int | None, limits: LimitsSettings) -> str | None:
	if steps is not None and not 1 <= steps <= limits.max_steps:
		return f'steps must be between 1 and {limits.max_steps}, got {steps}'
	return None


def _guidance_problem(cfg: float | None, limits: LimitsSettings) -> str | None:
	if cfg is not None and (not math.isfinite(cfg) or not 0 <= cfg <= limits.max_guidance):
		return f'guidance_scale must be finite and between 0 and {limits.max_guidance}, got {cfg}'
	return None


def _count_problem(count: int | None, limits: LimitsSettings) -> str | None:
	if count is not None and not 1 <= count <= limits.max_images:
		return f'num_images must be between 1 and {limits.max_images}, got {count}'
	return None


def _quality_problem(quality: int | None) -> str | None:
	if quality is not None and not 1 <= quality <= 100:
		return f'quality must be between 1 and 100, got {quality}'
	return None


def _lora_weight_problem(weight: float | None) -> str | None:
	if weight is not None and (not math.isfinite(weight) or not 0 <= weight <= MAX_LORA_WEIGHT):
		return f'weight must be between 0 and {MAX_LORA_WEIGHT}, got {weight}'
	return None


def _violations(params: GenerateParams, limits: LimitsSettings) -> list[FieldViolation]:
	checks: list[tuple[str, str | None]] = [
		('width', _check_size('width', params.width, limits)),
		('height', _check_size('height', params.height, limits)),
	]
	checks += _prompt_checks((('prompt', params.prompt), ('negative_prompt', params.negative_prompt)), limits)
	checks.append(('steps', _steps_problem(params.steps, limits)))
	checks.append(('guidance_scale', _guidance_problem(params.guidance_scale, limits)))
	count = params.num_images
	checks.append(('num_images', _count_problem(count, limits)))
	seed = params.seed
	if seed is not None and not 0 <= seed <= MAX_SEED - (count or 1) + 1:
		checks.append(('seed', f'seed must be between 0 and 2^63-{count or 1} (unset = random), got {seed}'))
	quality = params.quality
	checks.append(('quality', _quality_problem(quality)))
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


def spec_violations(spec: JobSpec, limits: LimitsSettings, prefix: str) -> list[FieldViolation]:
	"""A resolved job (an imported history record's) against the same rules as the request that made it."""
	checks: list[tuple[str, str | None]] = [
		('width', _check_size('width', spec.width, limits)),
		('height', _check_size('height', spec.height, limits)),
	]
	checks += _prompt_checks((('prompt', spec.prompt), ('negative_prompt', spec.negative_prompt)), limits)
	checks.append(('steps', _steps_problem(spec.steps, limits)))
	checks.append(('guidance_scale', _guidance_problem(spec.guidance_scale, limits)))
	checks.append(('seeds', _count_problem(len(spec.seeds), limits)))
	if any(not 0 <= seed <= MAX_SEED for seed in spec.seeds):
		checks.append(('seeds', 'every seed is between 0 and 2^63-1'))
	checks.append(('quality', _quality_problem(spec.quality)))
	strength = spec.strength
	if strength is not None and (not math.isfinite(strength) or not 0 < strength <= 1):
		checks.append(('strength', f'strength must be above 0 and at most 1, got {strength}'))
	if spec.inpaint and strength is None:
		checks.append(('inpaint', 'an inpainting job has a strength'))
	if not 0 <= spec.mask_blur <= MAX_MASK_BLUR:
		checks.append(('mask_blur', f'mask_blur must be between 0 and {MAX_MASK_BLUR}, got {spec.mask_blur}'))
	padding = spec.mask_crop_padding
	if padding is not None and not 0 <= padding <= MAX_MASK_CROP_PADDING:
		checks.append(('mask_crop_padding', f'at most {MAX_MASK_CROP_PADDING} pixels, got {padding}'))
	if len(spec.loras) > limits.max_loras:
		checks.append(('loras', f'at most {limits.max_loras} LoRAs per job, got {len(spec.loras)}'))
	for index, lora in enumerate(spec.loras):
		checks.append((f'loras[{index}].weight', _lora_weight_problem(lora.weight)))
		if not lora.name or len(lora.name) > 512 or '\x00' in lora.name:
			checks.append((f'loras[{index}].name', 'a LoRA name has 1 to 512 characters, no NUL'))
	if len(spec.styles) > limits.max_styles or any(not style or len(style) > 100 for style in spec.styles):
		checks.append(('styles', f'at most {limits.max_styles} style names of 1 to 100 characters'))
	return [FieldViolation(field=f'{prefix}.{field}', description=text) for field, text in checks if text is not None]


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
		checks.append((f'{field}.weight', _lora_weight_problem(lora.weight)))
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
