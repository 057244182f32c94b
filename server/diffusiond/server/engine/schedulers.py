"""Maps A1111 sampler names and schedule types to diffusers schedulers and their config, per diffusers' own table."""

from diffusers import (
	DDIMScheduler,
	DEISMultistepScheduler,
	DPMSolverMultistepScheduler,
	DPMSolverSDEScheduler,
	EulerAncestralDiscreteScheduler,
	EulerDiscreteScheduler,
	HeunDiscreteScheduler,
	KDPM2AncestralDiscreteScheduler,
	KDPM2DiscreteScheduler,
	LCMScheduler,
	LMSDiscreteScheduler,
	PNDMScheduler,
	SchedulerMixin,
	TCDScheduler,
	UniPCMultistepScheduler,
)
from pydantic import BaseModel, ConfigDict

from diffusiond.server.samplers import Sampler, Schedule


class SchedulerChoice(BaseModel):
	model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

	cls: type[SchedulerMixin]
	karras: bool = False
	algorithm: str | None = None


_KARRAS = {'use_karras_sigmas': True}

SCHEDULERS: dict[Sampler, SchedulerChoice] = {
	Sampler.EULER: SchedulerChoice(cls=EulerDiscreteScheduler),
	Sampler.EULER_KARRAS: SchedulerChoice(cls=EulerDiscreteScheduler, karras=True),
	Sampler.EULER_A: SchedulerChoice(cls=EulerAncestralDiscreteScheduler),
	Sampler.HEUN: SchedulerChoice(cls=HeunDiscreteScheduler),
	Sampler.DPMPP_2M: SchedulerChoice(cls=DPMSolverMultistepScheduler),
	Sampler.DPMPP_2M_KARRAS: SchedulerChoice(cls=DPMSolverMultistepScheduler, karras=True),
	Sampler.DPMPP_2M_SDE: SchedulerChoice(cls=DPMSolverMultistepScheduler, algorithm='sde-dpmsolver++'),
	Sampler.DPMPP_2M_SDE_KARRAS: SchedulerChoice(
		cls=DPMSolverMultistepScheduler, karras=True, algorithm='sde-dpmsolver++'
	),
	Sampler.DPMPP_SDE: SchedulerChoice(cls=DPMSolverSDEScheduler),
	Sampler.DPMPP_SDE_KARRAS: SchedulerChoice(cls=DPMSolverSDEScheduler, karras=True),
	Sampler.DPM2: SchedulerChoice(cls=KDPM2DiscreteScheduler),
	Sampler.DPM2_A: SchedulerChoice(cls=KDPM2AncestralDiscreteScheduler),
	Sampler.LMS: SchedulerChoice(cls=LMSDiscreteScheduler),
	Sampler.LMS_KARRAS: SchedulerChoice(cls=LMSDiscreteScheduler, karras=True),
	Sampler.DDIM: SchedulerChoice(cls=DDIMScheduler),
	Sampler.PNDM: SchedulerChoice(cls=PNDMScheduler),
	Sampler.UNIPC: SchedulerChoice(cls=UniPCMultistepScheduler),
	Sampler.DEIS: SchedulerChoice(cls=DEISMultistepScheduler),
	Sampler.LCM: SchedulerChoice(cls=LCMScheduler),
	Sampler.TCD: SchedulerChoice(cls=TCDScheduler),
}

# What each schedule type sets in a scheduler's config (A1111's names; checked against the sampler by samplers.py).
SCHEDULE_CONFIG: dict[Schedule, dict[str, bool | str]] = {
	Schedule.UNSPECIFIED: {},
	Schedule.UNIFORM: {'timestep_spacing': 'linspace'},
	Schedule.SGM_UNIFORM: {'timestep_spacing': 'trailing'},
	Schedule.KARRAS: {'use_karras_sigmas': True},
	Schedule.EXPONENTIAL: {'use_exponential_sigmas': True},
	Schedule.BETA: {'use_beta_sigmas': True},
}


def make_scheduler(sampler: Sampler, base: SchedulerMixin, schedule: Schedule = Schedule.UNSPECIFIED) -> SchedulerMixin:
	"""A fresh scheduler for one job, built from the model's own scheduler `base` and its config, spaced by
	`schedule`.

	Schedulers keep per-run state, so every job gets a new instance (the model's own class for
	`Sampler.UNSPECIFIED`).
	"""
	choice = SCHEDULERS.get(sampler)
	if choice is None:
		fresh: SchedulerMixin = type(base).from_config(base.config, **SCHEDULE_CONFIG[schedule])
		return fresh
	overrides: dict[str, bool | str] = dict(SCHEDULE_CONFIG[schedule])
	if choice.karras:
		overrides.update(_KARRAS)
	if choice.algorithm:
		overrides['algorithm_type'] = choice.algorithm
	scheduler: SchedulerMixin = choice.cls.from_config(base.config, **overrides)
	return scheduler
