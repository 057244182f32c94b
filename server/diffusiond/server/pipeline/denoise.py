"""One pipeline call for a job: txt2img or img2img on the loaded modules, with progress and previews."""

from collections.abc import Callable

import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, DiffusionPipeline
from PIL import Image

from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.errors import FailedPreconditionError
from diffusiond.server.pipeline.preview import Preview
from diffusiond.server.schemas import JobSpec

StepHook = Callable[[int, int], None]
PreviewHook = Callable[[int, bytes, int, int], None]  # step, JPEG, width, height


def denoise(
	pipe: DiffusionPipeline, base: ModelBase, spec: JobSpec, on_step: StepHook, on_preview: PreviewHook | None
) -> list[Image.Image]:
	"""Runs `spec` on `pipe`; `on_step` may raise to stop the job (the rest and the VAE decode are skipped)."""
	every = spec.preview_every if on_preview is not None else 0
	preview = Preview(base) if every else None

	def callback(
		pipeline: DiffusionPipeline, step: int, timestep: torch.Tensor, kwargs: dict[str, torch.Tensor]
	) -> dict[str, torch.Tensor]:
		done, total = step + 1, int(pipeline.num_timesteps)
		on_step(done, total)
		if preview is not None and on_preview is not None and (done % every == 0 or done == total):
			shown = preview.jpeg(kwargs['latents'])
			if shown is not None:
				on_preview(done, *shown)
		return kwargs

	common = {
		'prompt': spec.prompt,
		'negative_prompt': spec.negative_prompt or None,
		'num_inference_steps': spec.steps,
		'guidance_scale': spec.guidance_scale,
		'num_images_per_prompt': len(spec.seeds),
		'generator': [torch.Generator(device='cpu').manual_seed(seed) for seed in spec.seeds],
		'callback_on_step_end': callback,
	}
	sized = {**common, 'width': spec.width, 'height': spec.height}
	with torch.inference_mode():
		if spec.init_image is not None and spec.mask_image is not None:
			inpaint = _task_pipe(pipe, AutoPipelineForInpainting, 'inpainting')
			result = inpaint(image=spec.init_image, mask_image=spec.mask_image, strength=spec.strength, **sized)
			# the kept (black) area is returned exactly as sent, not as its trip through the VAE
			overlay = inpaint.image_processor.apply_overlay
			return [overlay(spec.mask_image, spec.init_image, image) for image in result.images]
		if spec.init_image is not None:
			image_pipe = _task_pipe(pipe, AutoPipelineForImage2Image, 'img2img')
			result = image_pipe(image=spec.init_image, strength=spec.strength, **common)
		else:
			result = pipe(**sized)
	images: list[Image.Image] = list(result.images)
	return images


def _task_pipe(
	pipe: DiffusionPipeline, auto: type[AutoPipelineForImage2Image] | type[AutoPipelineForInpainting], task: str
) -> DiffusionPipeline:
	"""The img2img or inpainting pipeline over the loaded modules (LoRAs and scheduler shared, nothing copied)."""
	try:
		task_pipe = auto.from_pipe(pipe)
	except ValueError as exc:
		raise FailedPreconditionError(f'a {type(pipe).__name__} model cannot do {task}: {exc}') from None
	task_pipe.set_progress_bar_config(disable=True)
	return task_pipe


def warm_up(pipe: DiffusionPipeline, size: int) -> None:
	"""One short run at the native size, so torch.compile compiles at load instead of in a user's job."""
	with torch.inference_mode():
		pipe(prompt='', num_inference_steps=2, width=size, height=size, output_type='latent')
