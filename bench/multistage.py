"""Multi-stage jobs on the tiny model, in the same run: a hires fix through the engine ÷ its two passes timed as
direct diffusers calls (the same upscale between, 64² → 128²), and a ControlNet job ÷ the same job without."""

import torch
from diffusers import AutoPipelineForImage2Image, ControlNetModel
from PIL import Image

from bench.timing import median_seconds
from diffusiond.server.engine.controlnets import ControlInputs
from diffusiond.server.engine.demo import build_pipeline
from diffusiond.server.engine.denoise import denoise
from diffusiond.server.engine.hooks import Hooks
from diffusiond.server.engine.preview import Previewer
from diffusiond.server.samplers import Sampler
from diffusiond.server.schemas import ImageFormat, JobSpec
from diffusiond.server.tasks import Hires, Txt2Img
from diffusiond.server.tasks.upscaler_file import UpscalerFile

PROMPT = 'a castle on a hill at dusk'


def _no_previews() -> Previewer:
	raise RuntimeError('no previews in this benchmark')


def _no_model_upscale(image: Image.Image, file: UpscalerFile, size: tuple[int, int]) -> Image.Image:
	raise RuntimeError('no upscaler model in this benchmark')


_HOOKS = Hooks(step=lambda done, total: False, stage=lambda stage, steps: None, upscale=_no_model_upscale)


def run_multistage(repeats: int = 5, steps: int = 20) -> list[tuple[str, str]]:
	pipe = build_pipeline()
	pipe.set_progress_bar_config(disable=True)
	second = AutoPipelineForImage2Image.from_pipe(pipe)
	second.set_progress_bar_config(disable=True)
	task = Hires(scale=2, width=128, height=128, upscaler='Latent', steps=0, strength=0.7)
	spec = JobSpec(
		model='tiny',
		prompt=PROMPT,
		negative_prompt='',
		width=64,
		height=64,
		steps=steps,
		guidance_scale=7.5,
		sampler=Sampler.UNSPECIFIED,
		seeds=[1],
		output_format=ImageFormat.PNG,
		quality=90,
		task=task,
	)

	def ours() -> None:
		denoise(pipe, _no_previews, [spec], _HOOKS, [None])

	def direct() -> None:
		with torch.inference_mode():
			generator = [torch.Generator().manual_seed(1)]
			latents = pipe(
				PROMPT, width=64, height=64, num_inference_steps=steps, generator=generator, output_type='latent'
			)
			side = 128 // pipe.vae_scale_factor
			upscaled = torch.nn.functional.interpolate(latents.images, size=(side, side), mode='bilinear')
			second(
				PROMPT,
				image=upscaled,
				strength=0.7,
				num_inference_steps=steps,
				generator=[torch.Generator().manual_seed(1)],
			)

	ours()
	direct()
	mine, theirs = median_seconds(ours, repeats), median_seconds(direct, repeats)
	plain = spec.model_copy(update={'task': Txt2Img()})
	controlnet = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(16, 32))
	control = ControlInputs(model=controlnet, images=Image.new('RGB', (64, 64), 'gray'), scale=1.0, start=0.0, end=1.0)

	def run(controls: ControlInputs | None) -> None:
		denoise(pipe, _no_previews, [plain], _HOOKS, [None], control=controls)

	run(control)
	with_control, without = median_seconds(lambda: run(control), repeats), median_seconds(lambda: run(None), repeats)
	return [
		('hires fix 64²→128² (Latent, 20+14 steps) ÷ its two passes called directly', f'{mine / theirs:.3f}'),
		('ControlNet job (one unit, 20 steps) ÷ the same job without', f'{with_control / without:.3f}'),
	]
