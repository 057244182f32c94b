"""Validates a generation request against the configured limits, diffusers `check_inputs` style.

Every rule is checked before a job is queued; all violations are reported at once, each naming the
field, the rule and the value received.
"""

import logging
import secrets
from typing import TypeVar

from diffusiond.server.catalog.rules import clip_skip_problem
from diffusiond.server.catalog.schemas import ModelDefaults, ModelInfo
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.jobs.controls import control_checks
from diffusiond.server.jobs.generation_rules import (
	MAX_SEED,
	check_size,
	count_problem,
	guidance_problem,
	lora_weight_problem,
	prompt_checks,
	quality_problem,
	steps_problem,
)
from diffusiond.server.jobs.prompts import Prompts
from diffusiond.server.samplers import Sampler, Schedule, schedule_problem
from diffusiond.server.schemas import GenerateParams, ImageFormat, JobSpec, LoraSpec
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.speed import speed_problems
from diffusiond.server.tasks import HiresRequest, Task, Txt2Img

log = logging.getLogger(__name__)
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 7.5
DEFAULT_QUALITY = 90


N = TypeVar('N', int, float, bool)
_RANDOM_SEED_BITS = 32  # random seeds stay in the 32-bit range users know from A1111


def _violations(params: GenerateParams, limits: LimitsSettings) -> list[FieldViolation]:
	checks: list[tuple[str, str | None]] = [
		('width', check_size('width', params.width, limits)),
		('height', check_size('height', params.height, limits)),
	]
	checks += prompt_checks((('prompt', params.prompt), ('negative_prompt', params.negative_prompt)), limits)
	checks.append(('steps', steps_problem(params.steps, limits)))
	checks.append(('guidance_scale', guidance_problem(params.guidance_scale, limits)))
	checks.append(('clip_skip', clip_skip_problem(params.clip_skip)))
	checks += speed_problems(params.deep_cache, params.token_merging)
	if params.sampler is not Sampler.UNSPECIFIED:  # else checked with the model's default sampler (resolve)
		checks.append(('schedule', schedule_problem(params.sampler, params.schedule)))
	count = params.num_images
	checks.append(('num_images', count_problem(count, limits)))
	seed = params.seed
	if seed is not None and not 0 <= seed <= MAX_SEED - (count or 1) + 1:
		checks.append(('seed', f'seed must be between 0 and 2^63-{count or 1} (unset = random), got {seed}'))
	quality = params.quality
	checks.append(('quality', quality_problem(quality)))
	if quality is not None and params.output_format is ImageFormat.PNG:
		checks.append(('quality', 'quality applies to JPEG and WebP only; leave it unset for PNG'))
	checks += _lora_checks(params, limits)
	checks += control_checks(params)
	checks += [(violation.field, violation.description) for violation in params.task.violations()]
	if isinstance(params.task, HiresRequest):
		hires = params.task
		checks.append(('hires.steps', steps_problem(hires.steps, limits) if hires.steps else None))
		checks += prompt_checks(
			(('hires.prompt', hires.prompt), ('hires.negative_prompt', hires.negative_prompt)), limits
		)
	if len(params.styles) > limits.max_styles:
		checks.append(('styles', f'at most {limits.max_styles} styles per request, got {len(params.styles)}'))
	if any(not style for style in params.styles):
		checks.append(('styles', 'a style is named by its id or name; got an empty one'))
	return [FieldViolation(field=field, description=text) for field, text in checks if text is not None]


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
		checks.append((f'{field}.weight', lora_weight_problem(lora.weight)))
	return checks


def check(params: GenerateParams, limits: LimitsSettings) -> None:
	"""Raises InvalidArgumentError naming every violated rule."""
	violations = _violations(params, limits)
	if violations:
		raise InvalidArgumentError(violations)


def usable_defaults(model: ModelInfo, limits: LimitsSettings) -> ModelDefaults:
	"""The model's defaults that fit the current limits; one that does not (set under other limits, or stored
	by hand) is left out, logged, and ours apply instead."""
	defaults = model.defaults
	steps, cfg = defaults.steps, defaults.guidance_scale
	problems = {
		'steps': steps_problem(steps, limits),
		'guidance_scale': guidance_problem(cfg, limits),
		'clip_skip': clip_skip_problem(defaults.clip_skip),
	}
	unusable = {field: problem for field, problem in problems.items() if problem is not None}
	if not unusable:
		return defaults
	log.warning('model %s: default(s) ignored: %s', model.name, '; '.join(unusable.values()))
	return defaults.model_copy(update={field: None for field in unusable})


def _given(asked: N | None, default: N | None, off: N) -> N:
	"""The request's value, else the model's default, else `off`."""
	return asked if asked is not None else default if default is not None else off


def _schedule(asked: Schedule, default: Schedule | None, sampler: Sampler) -> Schedule:
	"""The request's schedule, else the model's default where it goes with the sampler (checked), else Automatic."""
	if asked is not Schedule.UNSPECIFIED or default is None:
		return asked
	return default if schedule_problem(sampler, default) is None else Schedule.UNSPECIFIED


def job_size(params: GenerateParams, model: ModelInfo) -> tuple[int, int]:
	"""The job's width and height: the request's, else the model's native size."""
	return params.width or model.native_size, params.height or model.native_size


def resolve(
	params: GenerateParams,
	model: ModelInfo,
	limits: LimitsSettings,
	task: Task | None = None,
	loras: list[LoraSpec] | None = None,
	prompts: Prompts | None = None,
) -> JobSpec:
	"""Resolves every default of checked `params`: the request's value, else the model's default, else ours.

	`task`: the task spec at the job's size (intake builds it from the request's task); text-to-image if None."""
	width, height = job_size(params, model)
	seed = params.seed if params.seed is not None else secrets.randbits(_RANDOM_SEED_BITS)
	count = params.num_images or 1
	defaults = usable_defaults(model, limits)
	guidance = params.guidance_scale if params.guidance_scale is not None else defaults.guidance_scale
	sampler = params.sampler if params.sampler is not Sampler.UNSPECIFIED else defaults.sampler
	sampler = sampler or Sampler.UNSPECIFIED
	if problem := schedule_problem(sampler, params.schedule):
		raise InvalidArgumentError([FieldViolation(field='schedule', description=problem)])
	return JobSpec(
		model=model.name,
		prompt=params.prompt if prompts is None else prompts.prompt,
		negative_prompt=params.negative_prompt if prompts is None else prompts.negative_prompt,
		width=width,
		height=height,
		steps=params.steps or defaults.steps or DEFAULT_STEPS,
		guidance_scale=guidance if guidance is not None else DEFAULT_GUIDANCE,
		clip_skip=params.clip_skip or defaults.clip_skip or 1,
		sampler=sampler,
		schedule=_schedule(params.schedule, defaults.schedule, sampler),
		deep_cache=_given(params.deep_cache, defaults.deep_cache, 0),
		token_merging=_given(params.token_merging, defaults.token_merging, 0.0),
		fast_decode=_given(params.fast_decode, defaults.fast_decode, False),
		seeds=[seed + i for i in range(count)],
		output_format=params.output_format,
		quality=params.quality or DEFAULT_QUALITY,
		loras=loras or [],
		styles=prompts.styles if prompts else [],
		preview_every=params.preview_every,
		task=task if task is not None else Txt2Img(),
	)
