"""The hires fix (tasks/hires.py) as diffusers calls: the first pass (latents, or the decoded image), the upscale
(torch interpolation of the latents as A1111's latent modes do, Pillow's resize of the image, or an upscaler model
of the folder), then an img2img pass at the larger size over the same loaded modules, from fresh generators of the
same seeds."""

from collections.abc import Callable, Mapping

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from diffusiond.server.engine.hooks import Hooks, ModelUpscale
from diffusiond.server.schemas import JobSpec, Stage
from diffusiond.server.tasks.hires import LATENT_MODES, Hires

_RESAMPLE = {'Nearest': Image.Resampling.NEAREST}  # the others: Lanczos


def upscale_latents(latents: torch.Tensor, task: Hires, factor: int) -> torch.Tensor:
	mode, antialias = LATENT_MODES[task.upscaler]
	size = (task.height // factor, task.width // factor)
	return torch.nn.functional.interpolate(latents, size=size, mode=mode, antialias=antialias)


def upscale_images(images: list[Image.Image], task: Hires, model: ModelUpscale) -> list[Image.Image]:
	size = (task.width, task.height)
	if task.file is not None:
		return [model(image, task.file, size) for image in images]
	resample = _RESAMPLE.get(task.upscaler, Image.Resampling.LANCZOS)
	return [image.resize(size, resample=resample) for image in images]


def decoded(pipe: DiffusionPipeline, latents: torch.Tensor) -> list[Image.Image]:
	vae = pipe.vae
	pixels = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
	images: list[Image.Image] = pipe.image_processor.postprocess(pixels, output_type='pil')
	return images


def hires_fix(
	pipe: DiffusionPipeline,
	second_pipe: Callable[[], DiffusionPipeline],
	task: Hires,
	spec: JobSpec,
	common: Mapping[str, object],
	second: Mapping[str, object],
	hooks: Hooks,
) -> list[Image.Image]:
	"""Both passes (call inside inference mode); `common` holds the prompts, steps, generators and the first
	pass's callback; `second` what the second pass has of its own (its callback; its prompts, if any)."""
	latent = task.upscaler in LATENT_MODES
	first = pipe(width=spec.width, height=spec.height, output_type='latent' if latent else 'pil', **common)
	if pipe.interrupt:  # the job finished early in the first pass: its image as it is (CancelJob finish_early)
		return decoded(pipe, first.images) if latent else list(first.images)
	hooks.stage(Stage.UPSCALING, 0)
	upscaled: torch.Tensor | list[Image.Image] = (
		upscale_latents(first.images, task, int(pipe.vae_scale_factor))
		if latent
		else upscale_images(first.images, task, hooks.upscale)
	)
	again = {
		**common,
		**second,
		'num_inference_steps': task.second_steps(spec.steps),
		'generator': [torch.Generator(device='cpu').manual_seed(seed) for seed in spec.seeds],
	}
	hooks.stage(Stage.SECOND_PASS, task.progress_steps(spec.steps) - spec.steps)
	result = second_pipe()(image=upscaled, strength=task.strength, **again)
	images: list[Image.Image] = list(result.images)
	return images
