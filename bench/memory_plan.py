"""Memory planning benchmark: the estimate of a job's working memory (jobs/memory.py, from the loaded pipeline's own
configs) against the measured peak, on CPU the process's RSS sampled every 2 ms during the call minus its RSS just
before (the heap trimmed first, as the engine does after a job; on CUDA, torch's peak allocated memory minus the weights). Ratio measured ÷ estimated: above 1 the estimate is
short (the planner would turn savers on too late), below 1 it is cautious. Tiny model and an SD1.5-shaped one (random
weights: memory does not depend on them), 1 image, CFG on, 1 step (the peaks do not grow with steps)."""

import tempfile
import threading
from pathlib import Path

import psutil
import torch
from diffusers import StableDiffusionPipeline

from bench.sd15 import build_sd15
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.device import release_memory
from diffusiond.server.engine.memory_savers import pipeline_shape
from diffusiond.server.jobs.memory import estimate


def _measured(pipe: StableDiffusionPipeline, size: int, device: torch.device) -> int:
	def call() -> None:
		pipe(prompt='a red fox', width=size, height=size, num_inference_steps=1, guidance_scale=7.5)

	call()  # warm-up: lazily made buffers are not the job's
	if device.type == 'cuda':
		torch.cuda.reset_peak_memory_stats(device)
		before = torch.cuda.memory_allocated(device)
		call()
		return int(torch.cuda.max_memory_allocated(device) - before)
	release_memory(device)  # the warm-up's freed memory back to the OS, or RSS would not show the call's peak
	process = psutil.Process()
	before = process.memory_info().rss
	peak = [before]
	done = threading.Event()

	def sample() -> None:
		while not done.wait(0.002):
			peak[0] = max(peak[0], process.memory_info().rss)

	sampler = threading.Thread(target=sample)
	sampler.start()
	try:
		call()
	finally:
		done.set()
		sampler.join()
	return peak[0] - before


def _rows(label: str, folder: Path, sizes: tuple[int, ...], device: torch.device) -> list[tuple[str, str]]:
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	pipe = StableDiffusionPipeline.from_pretrained(
		str(folder), dtype=dtype, safety_checker=None, requires_safety_checker=False
	).to(device)
	pipe.set_progress_bar_config(disable=True)
	shape = pipeline_shape(pipe, dtype)
	rows = []
	for size in sizes:
		measured = _measured(pipe, size, device)
		estimated = estimate(size, size, 1, True, shape).peak([])
		rows.append(
			(
				f'memory estimate ({label} {size}²): measured / estimated MiB',
				f'{measured / 2**20:.0f} / {estimated / 2**20:.0f} = {measured / estimated:.2f}',
			)
		)
	return rows


def run_memory_plan() -> list[tuple[str, str]]:
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	with tempfile.TemporaryDirectory() as scratch:
		rows = _rows('tiny', build_demo_model(Path(scratch) / 'tiny'), (256, 512), device)
		rows += _rows('SD1.5-shaped', build_sd15(Path(scratch) / 'sd15', torch.float32), (256, 512), device)
	return rows


if __name__ == '__main__':
	for name, value in run_memory_plan():
		print(f'{name:<60} {value:>14}')
