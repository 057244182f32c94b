"""The pipelines a task runs over the loaded modules (LoRAs, VAE and scheduler shared, nothing copied): img2img,
inpainting, a hires fix's second pass, and their ControlNet variants (diffusers' AutoPipeline picks the class)."""

from collections.abc import Mapping

from diffusers import (
	AutoPipelineForImage2Image,
	AutoPipelineForInpainting,
	AutoPipelineForText2Image,
	ControlNetModel,
	DiffusionPipeline,
	SchedulerMixin,
)
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel
from PIL import Image

from diffusiond.server.engine.controlnets import ControlInputs
from diffusiond.server.engine.schedulers import make_scheduler
from diffusiond.server.errors import FailedPreconditionError
from diffusiond.server.samplers import Sampler, Schedule, schedule_problem
from diffusiond.server.tasks import Inpaint
from diffusiond.server.tasks.sources import image_of

Auto = type[AutoPipelineForText2Image] | type[AutoPipelineForImage2Image] | type[AutoPipelineForInpainting]


def task_pipe(
	pipe: DiffusionPipeline,
	auto: Auto,
	task: str,
	controlnet: ControlNetModel | MultiControlNetModel | None = None,
) -> DiffusionPipeline:
	"""`auto`'s pipeline over `pipe`'s modules (with `controlnet`: its ControlNet pipeline)."""
	try:
		made = auto.from_pipe(pipe) if controlnet is None else auto.from_pipe(pipe, controlnet=controlnet)
	except ValueError as exc:
		raise FailedPreconditionError(f'a {type(pipe).__name__} model cannot do {task}: {exc}') from None
	made.set_progress_bar_config(disable=True)
	return made


def second_pipe(
	pipe: DiffusionPipeline, sampler: Sampler, schedule: Schedule, own: SchedulerMixin | None
) -> DiffusionPipeline:
	"""A hires fix's img2img pipeline, with its own sampler where it asks for one (spaced by the job's schedule
	where that goes with it, else by the sampler's own)."""
	second = task_pipe(pipe, AutoPipelineForImage2Image, 'hires fix')
	if sampler is not Sampler.UNSPECIFIED:
		spacing = schedule if schedule_problem(sampler, schedule) is None else Schedule.UNSPECIFIED
		second.scheduler = make_scheduler(sampler, own or pipe.scheduler, spacing)
	return second


def inpaint(
	pipe: DiffusionPipeline,
	task: Inpaint,
	size: tuple[int, int],
	common: Mapping[str, object],
	control: ControlInputs | None,
) -> list[Image.Image]:
	runner = task_pipe(pipe, AutoPipelineForInpainting, 'inpainting', control.model if control else None)
	init, mask = image_of(task.init_image, 'RGB'), image_of(task.mask_image, 'L')
	result = runner(
		image=init,
		mask_image=mask,
		padding_mask_crop=task.mask_crop_padding,
		strength=task.strength,
		width=size[0],
		height=size[1],
		**common,
		**(control.kwargs('control_image') if control else {}),
	)
	# the kept (black) area is returned exactly as sent, not as its trip through the VAE
	overlay = runner.image_processor.apply_overlay
	return [overlay(mask, init, image) for image in result.images]
