"""The value rules of a generation, shared by request validation (validation.py) and by what is read back
from outside (imported history records): each returns a problem text or None, against the current limits."""

import math

from diffusiond.server.catalog.rules import clip_skip_problem
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.schemas import JobSpec
from diffusiond.server.settings import LimitsSettings

MAX_SEED = 2**63 - 1
MAX_LORA_WEIGHT = 2.0
Checks = list[tuple[str, str | None]]


def check_size(field: str, value: int | None, limits: LimitsSettings) -> str | None:
	if value is None:
		return None
	if value % 8 or not limits.min_size <= value <= limits.max_size:
		return f'{field} must be a multiple of 8 between {limits.min_size} and {limits.max_size}, got {value}'
	return None


def output_size(size: tuple[int, int], limits: LimitsSettings) -> None:
	"""INVALID_ARGUMENT when the images a task makes (a hires fix's second pass) fall outside the size limits."""
	found = [
		FieldViolation(field=f'hires.{field}', description=f'the upscaled {problem}')
		for field, value in zip(('width', 'height'), size, strict=True)
		if (problem := check_size(field, value, limits)) is not None
	]
	if found:
		raise InvalidArgumentError(found)


def prompt_checks(texts: tuple[tuple[str, str], ...], limits: LimitsSettings) -> Checks:
	checks: Checks = []
	for field, text in texts:
		if len(text) > limits.max_prompt_chars:
			checks.append((field, f'{field} must be at most {limits.max_prompt_chars} characters, got {len(text)}'))
		if '\x00' in text:
			checks.append((field, f'{field} must not contain NUL characters'))
	return checks


def steps_problem(steps: int | None, limits: LimitsSettings) -> str | None:
	if steps is not None and not 1 <= steps <= limits.max_steps:
		return f'steps must be between 1 and {limits.max_steps}, got {steps}'
	return None


def guidance_problem(cfg: float | None, limits: LimitsSettings) -> str | None:
	if cfg is not None and (not math.isfinite(cfg) or not 0 <= cfg <= limits.max_guidance):
		return f'guidance_scale must be finite and between 0 and {limits.max_guidance}, got {cfg}'
	return None


def count_problem(count: int | None, limits: LimitsSettings) -> str | None:
	if count is not None and not 1 <= count <= limits.max_images:
		return f'num_images must be between 1 and {limits.max_images}, got {count}'
	return None


def quality_problem(quality: int | None) -> str | None:
	if quality is not None and not 1 <= quality <= 100:
		return f'quality must be between 1 and 100, got {quality}'
	return None


def lora_weight_problem(weight: float | None) -> str | None:
	if weight is not None and (not math.isfinite(weight) or not -MAX_LORA_WEIGHT <= weight <= MAX_LORA_WEIGHT):
		return f'weight must be between -{MAX_LORA_WEIGHT:g} and {MAX_LORA_WEIGHT:g} (A1111 allows negative ones), got {weight}'
	return None


def spec_violations(spec: JobSpec, limits: LimitsSettings, prefix: str) -> list[FieldViolation]:
	"""A resolved job (an imported history record's) against the same rules as the request that made it."""
	checks: Checks = [
		('width', check_size('width', spec.width, limits)),
		('height', check_size('height', spec.height, limits)),
	]
	checks += prompt_checks((('prompt', spec.prompt), ('negative_prompt', spec.negative_prompt)), limits)
	checks.append(('steps', steps_problem(spec.steps, limits)))
	checks.append(('guidance_scale', guidance_problem(spec.guidance_scale, limits)))
	checks.append(('clip_skip', clip_skip_problem(spec.clip_skip)))
	checks.append(('seeds', count_problem(len(spec.seeds), limits)))
	if any(not 0 <= seed <= MAX_SEED for seed in spec.seeds):
		checks.append(('seeds', 'every seed is between 0 and 2^63-1'))
	checks.append(('quality', quality_problem(spec.quality)))
	if len(spec.loras) > limits.max_loras:
		checks.append(('loras', f'at most {limits.max_loras} LoRAs per job, got {len(spec.loras)}'))
	for index, lora in enumerate(spec.loras):
		checks.append((f'loras[{index}].weight', lora_weight_problem(lora.weight)))
		if not lora.name or len(lora.name) > 512 or '\x00' in lora.name:
			checks.append((f'loras[{index}].name', 'a LoRA name has 1 to 512 characters, no NUL'))
	if len(spec.styles) > limits.max_styles or any(not style or len(style) > 100 for style in spec.styles):
		checks.append(('styles', f'at most {limits.max_styles} style names of 1 to 100 characters'))
	found = [FieldViolation(field=f'{prefix}.{field}', description=text) for field, text in checks if text is not None]
	return found + spec.task.violations(f'{prefix}.task')
