"""One pipeline call for a job: txt2img or img2img on the loaded modules, with progress and previews."""

from collections.abc import Callable

import torch
from diffusers import AutoPipelineForImage2Image, DiffusionPipeline
from PIL import Image

from diffusiond.server.catalog.schemas import ModelBase
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
	with torch.inference_mode():
		if spec.init_image is not None:  # img2img shares the loaded modules, LoRAs and scheduler
			image_pipe = AutoPipelineForImage2Image.from_pipe(pipe)
			image_pipe.set_progress_bar_config(disable=True)
			result = image_pipe(image=spec.init_image, strength=spec.strength, **common)
		else:
			result = pipe(width=spec.width, height=spec.height, **common)
	images: list[Image.Image] = list(result.images)
	return images


def warm_up(pipe: DiffusionPipeline, size: int) -> None:
	"""One short run at the native size, so torch.compile compiles at load instead of in a user's job."""
	with torch.inference_mode():
		pipe(prompt='', num_inference_steps=2, width=size, height=size, output_type='latent')
