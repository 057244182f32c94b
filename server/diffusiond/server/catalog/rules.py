"""The rules for what a user may set on a model or a LoRA: one place, used by the RPCs and by archive imports.

Each function returns every violation at once (empty = fine); the caller raises InvalidArgumentError.
"""

import math

from diffusiond.server.catalog.lora_schemas import MAX_WEIGHT, LoraChanges
from diffusiond.server.catalog.schemas import MAX_CLIP_SKIP, ModelChanges
from diffusiond.server.errors import FieldViolation
from diffusiond.server.samplers import schedule_problem
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.speed import speed_problems

MAX_DISPLAY_NAME = 512
MAX_TAGS = 64
MAX_WORD = 200  # one tag or trigger word
MAX_TRIGGER_WORDS = 32
MAX_NOTE = 4000  # a LoRA's note


def clean_words(values: list[str]) -> list[str]:
	"""Tags or trigger words as stored: stripped, each once, in their order."""
	return list(dict.fromkeys(value.strip() for value in values))


def words_violation(field: str, words: list[str] | None, limit: int) -> list[FieldViolation]:
	if words is None:
		return []
	if '' in words or len(words) > limit or any(len(word) > MAX_WORD or '\x00' in word for word in words):
		return [
			FieldViolation(field=field, description=f'at most {limit} non-empty entries of <= {MAX_WORD} characters')
		]
	return []


def display_name_violation(field: str, name: str | None) -> list[FieldViolation]:
	if name is not None and (len(name) > MAX_DISPLAY_NAME or '\x00' in name):
		return [FieldViolation(field=field, description=f'at most {MAX_DISPLAY_NAME} characters, no NUL')]
	return []


def model_changes_violations(changes: ModelChanges, limits: LimitsSettings, prefix: str) -> list[FieldViolation]:
	found = display_name_violation(f'{prefix}.display_name', changes.display_name)
	found += words_violation(f'{prefix}.tags', changes.tags, MAX_TAGS)
	defaults = changes.defaults
	if defaults is not None:
		if defaults.steps is not None and not 1 <= defaults.steps <= limits.max_steps:
			found.append(
				FieldViolation(
					field=f'{prefix}.defaults.steps',
					description=f'defaults.steps must be between 1 and {limits.max_steps}, got {defaults.steps}',
				)
			)
		cfg = defaults.guidance_scale
		if cfg is not None and not (math.isfinite(cfg) and 0 <= cfg <= limits.max_guidance):
			found.append(
				FieldViolation(
					field=f'{prefix}.defaults.guidance_scale',
					description=f'defaults.guidance_scale must be between 0 and {limits.max_guidance}, got {cfg}',
				)
			)
		if (problem := clip_skip_problem(defaults.clip_skip)) is not None:
			found.append(FieldViolation(field=f'{prefix}.defaults.clip_skip', description=f'defaults.{problem}'))
		found += [
			FieldViolation(field=f'{prefix}.defaults.{field}', description=f'defaults.{why}')
			for field, why in speed_problems(defaults.deep_cache, defaults.token_merging)
		]
		sampler, schedule = defaults.sampler, defaults.schedule
		if sampler is not None and schedule is not None and (problem := schedule_problem(sampler, schedule)):
			found.append(FieldViolation(field=f'{prefix}.defaults.schedule', description=problem))
	return found


def clip_skip_problem(clip_skip: int | None) -> str | None:
	if clip_skip is not None and not 1 <= clip_skip <= MAX_CLIP_SKIP:
		return f'clip_skip is 1 (the last CLIP layer) to {MAX_CLIP_SKIP}, got {clip_skip}'
	return None


def weight_problem(weight: float) -> str | None:
	if not (math.isfinite(weight) and -MAX_WEIGHT <= weight <= MAX_WEIGHT):
		return f'must be between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}, got {weight}'
	return None


def lora_changes_violations(changes: LoraChanges, prefix: str) -> list[FieldViolation]:
	found = display_name_violation(f'{prefix}.display_name', changes.display_name)
	found += words_violation(f'{prefix}.tags', changes.tags, MAX_TAGS)
	found += words_violation(f'{prefix}.trigger_words', changes.trigger_words, MAX_TRIGGER_WORDS)
	if changes.default_weight is not None and (problem := weight_problem(changes.default_weight)):
		found.append(FieldViolation(field=f'{prefix}.default_weight', description=problem))
	if changes.note is not None and (len(changes.note) > MAX_NOTE or '\x00' in changes.note):
		found.append(FieldViolation(field=f'{prefix}.note', description=f'at most {MAX_NOTE} characters, no NUL'))
	return found
