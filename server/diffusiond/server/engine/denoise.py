"""One pipeline call: txt2img (one job or a batch of jobs), img2img or inpainting on the loaded modules."""

from collections.abc import Callable
from functools import partial

import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image, DiffusionPipeline, SchedulerMixin
from PIL import Image

from diffusiond.server.engine.controlnets import ControlInputs
from diffusiond.server.engine.hires import decoded, hires_fix
from diffusiond.server.engine.hooks import Callback, Hooks, Refine
from diffusiond.server.engine.preview import Previewer
from diffusiond.server.engine.prompt_embeds import prompt_kwargs
from diffusiond.server.engine.task_pipes import inpaint, second_pipe, task_pipe
from diffusiond.server.engine.tensor_files import Tensors
from diffusiond.server.jobs.engine_api import PreviewHook
from diffusiond.server.schemas import JobSpec, Stage
from diffusiond.server.tasks import Hires, Img2Img, Inpaint, Txt2Img
from diffusiond.server.tasks.sources import image_of

_Shown = tuple[int, int, PreviewHook]  # index of the job's first image in the batch, every N steps, hook


def denoise(
	pipe: DiffusionPipeline,
	previewer: Callable[[], Previewer],
	specs: list[JobSpec],
	hooks: Hooks,
	on_previews: list[PreviewHook | None],
	vectors: list[dict[str, Tensors]] | None = None,
	own_scheduler: SchedulerMixin | None = None,
	control: ControlInputs | None = None,
	refine: Refine | None = None,
) -> list[Image.Image]:
	"""Runs `specs` as one call (every image of every job, in order); `hooks.step` may raise to stop the call.

	Several specs must agree on everything but prompts, seeds and previews (see batching.py); img2img and
	inpainting run one spec at a time. `vectors`: per spec, the vectors of the embeddings its prompts name;
	`own_scheduler`: the model's own, that a hires fix's second-pass sampler is made from; `control`: the job's
	ControlNet units (one job); `refine`: the refiner pass of a job with one (the engine loads the refiner)."""
	shows: list[_Shown] = []
	offset = 0
	for spec, hook in zip(specs, on_previews, strict=True):
		if hook is not None and spec.preview_every:
			shows.append((offset, spec.preview_every, hook))
		offset += len(spec.seeds)
	preview = previewer() if shows else None  # made only when some job wants previews (TAESD loads lazily)

	total = specs[0].progress_steps

	def callback(offset: int, asked: int) -> Callback:
		"""Progress within one pass (`asked` of its steps, after `offset` of an earlier pass), previews too."""

		def on_step_end(
			pipeline: DiffusionPipeline, step: int, timestep: torch.Tensor, kwargs: dict[str, torch.Tensor]
		) -> dict[str, torch.Tensor]:
			done = offset + user_step(step + 1, int(pipeline.num_timesteps), asked)
			if hooks.step(done, total):  # every timestep, so a cancel is seen at once; repeats are dropped later
				pipeline._interrupt = True  # diffusers skips the remaining steps and decodes the latents as they are
			for first, every, hook in shows:
				if preview is not None and (done % every == 0 or done == total):
					shown = preview.jpeg(kwargs['latents'][first : first + 1])
					if shown is not None:
						hook(done, *shown)
			return kwargs

		return on_step_end

	spec = specs[0]
	first = spec.steps if isinstance(spec.task, Hires) else total  # what the first pass denoises
	if spec.refiner is not None and refine is not None:
		first = spec.refiner.first_steps(spec.steps)
	common: dict[str, object] = {
		'num_inference_steps': spec.steps,
		'guidance_scale': spec.guidance_scale,
		'generator': [torch.Generator(device='cpu').manual_seed(seed) for job in specs for seed in job.seeds],
		'callback_on_step_end': callback(0, first),
	}
	with torch.inference_mode():
		hooks.stage(Stage.ENCODING_PROMPT, 0)
		common = {**prompt_kwargs(pipe, specs, vectors or [{} for _ in specs]), **common}
		hooks.stage(Stage.DENOISING, first)
		match spec.task:
			case Txt2Img() if spec.refiner is not None and refine is not None:
				latents = pipe(
					width=spec.width,
					height=spec.height,
					denoising_end=spec.refiner.switch_at,
					output_type='latent',
					**common,
				).images
				if pipe.interrupt:  # finished early before the refiner: the latents as they are
					return decoded(pipe, latents)
				hooks.stage(Stage.REFINING, total - first)
				return refine(latents, callback(first, total - first))
			case Txt2Img() if control is not None:
				runner = task_pipe(pipe, AutoPipelineForText2Image, 'ControlNet', control.model)
				result = runner(width=spec.width, height=spec.height, **common, **control.kwargs('image'))
			case Txt2Img():
				result = pipe(width=spec.width, height=spec.height, **common)
			case Img2Img() as task:
				runner = task_pipe(pipe, AutoPipelineForImage2Image, 'img2img', control.model if control else None)
				extra = control.kwargs('control_image') if control else {}
				result = runner(image=image_of(task.init_image, 'RGB'), strength=task.strength, **common, **extra)
			case Inpaint() as task:
				return inpaint(pipe, task, (spec.width, spec.height), common, control)
			case Hires() as task:
				second: dict[str, object] = {'callback_on_step_end': callback(spec.steps, total - spec.steps)}
				if task.tokens is not None:  # the second pass's own prompts
					own = {'tokens': task.tokens, 'negative_prompt': task.negative_prompt or spec.negative_prompt}
					second |= prompt_kwargs(pipe, [spec.model_copy(update=own)], vectors or [{}])
				make = partial(second_pipe, pipe, task.sampler, spec.schedule, own_scheduler)
				return hires_fix(pipe, make, task, spec, common, second, hooks)
	images: list[Image.Image] = list(result.images)
	return images


def user_step(timestep: int, timesteps: int, asked: int) -> int:
	"""The request's step a scheduler timestep belongs to: PNDM runs steps + 1 timesteps, Heun and DPM2 about
	twice as many as steps; progress counts what the user asked for (the last timestep is the last step)."""
	if timesteps <= 0 or timestep >= timesteps:
		return asked
	return max(0, min(asked, round(timestep * asked / timesteps)))


def warm_up(pipe: DiffusionPipeline, size: int) -> None:
	"""One short run at the native size, so torch.compile compiles at load instead of in a user's job."""
	with torch.inference_mode():
		pipe(prompt='', num_inference_steps=2, width=size, height=size, output_type='latent')
