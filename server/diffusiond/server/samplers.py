"""The samplers a request names (A1111's names); engine/schedulers.py maps them to diffusers schedulers."""

import enum


class Sampler(enum.Enum):
	"""A1111 sampler names; member names match the proto enum's suffixes (SAMPLER_<NAME>)."""

	UNSPECIFIED = 'model default'
	EULER = 'Euler'
	EULER_A = 'Euler a'
	HEUN = 'Heun'
	DPMPP_2M = 'DPM++ 2M'
	DPMPP_2M_KARRAS = 'DPM++ 2M Karras'
	DPMPP_SDE = 'DPM++ SDE'
	DPMPP_SDE_KARRAS = 'DPM++ SDE Karras'
	DPM2 = 'DPM2'
	DPM2_A = 'DPM2 a'
	LMS = 'LMS'
	DDIM = 'DDIM'
	PNDM = 'PNDM'
	UNIPC = 'UniPC'
	DEIS = 'DEIS'
	DPMPP_2M_SDE = 'DPM++ 2M SDE'
	DPMPP_2M_SDE_KARRAS = 'DPM++ 2M SDE Karras'
	LMS_KARRAS = 'LMS Karras'
	EULER_KARRAS = 'Euler Karras'
	LCM = 'LCM'  # LCMScheduler: LCM checkpoints and the LCM-LoRA, 4-8 steps at CFG 1-2
	TCD = 'TCD'  # TCDScheduler: TCD-LoRAs, few steps


class Schedule(enum.Enum):
	"""A1111's schedule types: how a sampler spaces its steps; member names match the proto's SCHEDULE_<NAME>."""

	UNSPECIFIED = 'Automatic'  # the sampler's own (its Karras variant: Karras)
	UNIFORM = 'Uniform'  # timesteps evenly over the whole range (diffusers `linspace`)
	SGM_UNIFORM = 'SGM Uniform'  # evenly, ending at the last timestep (`trailing`): Turbo, Lightning, Hyper models
	KARRAS = 'Karras'  # Karras et al. sigmas
	EXPONENTIAL = 'Exponential'  # sigmas evenly in log space
	BETA = 'Beta'  # sigmas from a beta distribution (Lee et al. 2024)


# The schedules that set a sampler's sigmas: only samplers that work on sigmas take them (diffusers' `use_*_sigmas`).
SIGMA_SCHEDULES = frozenset({Schedule.KARRAS, Schedule.EXPONENTIAL, Schedule.BETA})
SIGMA_SAMPLERS = frozenset(
	{
		Sampler.EULER,
		Sampler.EULER_KARRAS,
		Sampler.HEUN,
		Sampler.DPMPP_2M,
		Sampler.DPMPP_2M_KARRAS,
		Sampler.DPMPP_SDE,
		Sampler.DPMPP_SDE_KARRAS,
		Sampler.DPMPP_2M_SDE,
		Sampler.DPMPP_2M_SDE_KARRAS,
		Sampler.DPM2,
		Sampler.DPM2_A,
		Sampler.LMS,
		Sampler.LMS_KARRAS,
		Sampler.UNIPC,
		Sampler.DEIS,
	}
)


def schedule_problem(sampler: Sampler, schedule: Schedule) -> str | None:
	"""Why `schedule` cannot go with `sampler`, or None."""
	if schedule is Schedule.UNSPECIFIED:
		return None
	if sampler.name.endswith('_KARRAS') and schedule is not Schedule.KARRAS:
		return (
			f'sampler {sampler.value!r} has the Karras schedule; leave schedule unset or choose the sampler without it'
		)
	if schedule in SIGMA_SCHEDULES and sampler is Sampler.UNSPECIFIED:
		return f'schedule {schedule.value!r} needs a sampler (the model default is not known before it loads)'
	if schedule in SIGMA_SCHEDULES and sampler not in SIGMA_SAMPLERS:
		return (
			f'schedule {schedule.value!r} sets sigmas, which sampler {sampler.value!r} does not use; with it choose '
			f'{Schedule.UNIFORM.value!r} or {Schedule.SGM_UNIFORM.value!r}'
		)
	return None
