"""Speed options benchmark: each option's denoising time ÷ the plain run and its image difference from the plain run
(mean and max absolute, 0..255), through the engine's own `speedups()` on a direct pipeline call, on the tiny model
(64², 20 steps) and on an SD1.5-shaped model with random weights (256², 10 steps, CPU unless CUDA is here). Random
weights make the image differences an upper bound of what a trained model shows; the time ratios carry over. And
fast decode: a TAESD-shaped tiny autoencoder's decode time ÷ the SD1.5-shaped VAE's."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from diffusers import AutoencoderKL, AutoencoderTiny, EulerDiscreteScheduler, StableDiffusionPipeline

from bench.sd15 import build_sd15
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.speedups import speedups
from diffusiond.server.samplers import Sampler
from diffusiond.server.schemas import ImageFormat, JobSpec
from diffusiond.server.tasks import Txt2Img

_OPTIONS: dict[str, dict[str, float]] = {
	'DeepCache every 3': {'deep_cache': 3},
	'ToMe 0.5': {'token_merging': 0.5},
	'DeepCache 3 + ToMe 0.5': {'deep_cache': 3, 'token_merging': 0.5},
}


def _spec(size: int, steps: int, **options: float) -> JobSpec:
	return JobSpec(
		model='bench',
		prompt='a red fox in the snow',
		negative_prompt='',
		width=size,
		height=size,
		steps=steps,
		guidance_scale=7.5,
		sampler=Sampler.EULER,
		seeds=[1],
		output_format=ImageFormat.PNG,
		quality=90,
		task=Txt2Img(),
		**options,
	)


def _measure(pipe: StableDiffusionPipeline, spec: JobSpec, repeats: int) -> tuple[float, npt.NDArray[np.int16]]:
	times, image = [], np.zeros(1, dtype=np.int16)
	for _ in range(repeats):
		with speedups(pipe, spec):
			start = time.perf_counter()
			made = pipe(
				prompt=spec.prompt,
				width=spec.width,
				height=spec.height,
				num_inference_steps=spec.steps,
				generator=torch.Generator('cpu').manual_seed(1),
			).images[0]
			times.append(time.perf_counter() - start)
		image = np.asarray(made).astype(np.int16)
	return statistics.median(times), image


def _rows(label: str, folder: Path, size: int, steps: int, repeats: int, device: torch.device) -> list[tuple[str, str]]:
	pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, requires_safety_checker=False)
	pipe = pipe.to(device)
	pipe.set_progress_bar_config(disable=True)
	pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
	plain_s, plain = _measure(pipe, _spec(size, steps), repeats)
	rows = [(f'speed ({label}): plain run, s', f'{plain_s:.2f}')]
	for name, options in _OPTIONS.items():
		seconds, image = _measure(pipe, _spec(size, steps, **options), repeats)
		difference = np.abs(image - plain)
		rows.append((f'speed ({label}): {name} time ÷ plain', f'{seconds / plain_s:.2f}'))
		rows.append((f'speed ({label}): {name} |Δ| mean / max', f'{difference.mean():.1f} / {difference.max()}'))
	return rows


def _decode_rows(folder: Path, size: int, device: torch.device) -> list[tuple[str, str]]:
	"""fast_decode: the SD1.5-shaped VAE's decode vs a TAESD-shaped tiny autoencoder's (its default architecture)."""
	vae = AutoencoderKL.from_pretrained(str(folder / 'vae')).to(device)
	tiny = AutoencoderTiny().to(device)
	latents = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator('cpu').manual_seed(0)).to(device)
	times: dict[str, list[float]] = {'vae': [], 'tiny': []}
	with torch.inference_mode():
		for _ in range(3):
			for name, decode in (('vae', vae.decode), ('tiny', tiny.decode)):
				start = time.perf_counter()
				decode(latents)
				times[name].append(time.perf_counter() - start)
	full, fast = statistics.median(times['vae']), statistics.median(times['tiny'])
	return [(f'fast decode ({size}²): VAE decode s / TAESD-shaped ÷ VAE', f'{full:.2f} / {fast / full:.3f}')]


def run_speedups(repeats: int = 3) -> list[tuple[str, str]]:
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	with tempfile.TemporaryDirectory() as scratch:
		tiny = build_demo_model(Path(scratch) / 'tiny')
		rows = _rows('tiny 64²', tiny, 64, 20, repeats, device)
		sd15 = build_sd15(Path(scratch) / 'sd15', torch.float32)
		rows += _rows('SD1.5-shaped 256²', sd15, 256, 10, 1, device)
		rows += _decode_rows(sd15, 256, device)
	return rows


if __name__ == '__main__':
	for name, value in run_speedups():
		print(f'{name:<60} {value:>14}')
