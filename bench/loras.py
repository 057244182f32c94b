"""LoRA benchmarks on the tiny model: applying and removing LoRAs against a generation's time."""

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.jobs.validation import resolve
from diffusiond.server.schemas import GenerateParams, LoraSpec
from diffusiond.server.settings import LimitsSettings, LoraSettings
from tests.lora_files import write_tiny_lora


def _timed(action: Callable[[int], object], repeats: int) -> float:
	times = []
	for index in range(repeats):
		start = time.perf_counter()
		action(index)
		times.append(time.perf_counter() - start)
	return statistics.median(times)


def run_loras(repeats: int = 7, steps: int = 20, size: int = 64) -> list[tuple[str, str]]:
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	with tempfile.TemporaryDirectory() as scratch:
		root = Path(scratch)
		model = ModelInfo(id='tiny', name='tiny', path=build_demo_model(root / 'tiny'), native_size=64)
		files = [write_tiny_lora(root / f'lora-{index}.safetensors', seed=index) for index in range(repeats + 2)]
		slots = 2
		backend = DiffusersEngine(device, dtype, PipelineCache(1, 1 << 40), loras=LoraSettings(max_adapters=slots))
		backend.load(model)

		def job(loras: list[LoraSpec], job_steps: int = steps) -> None:
			params = GenerateParams(model='tiny', prompt='a fox', steps=job_steps, seed=1, width=size, height=size)
			spec = resolve(params, model, LimitsSettings(), loras=loras)
			backend.prepare(spec)
			if job_steps:
				backend.run([spec], lambda step, total: False, [None], lambda stage, steps: None)

		def lora(index: int, weight: float = 1.0) -> LoraSpec:
			path = files[index]
			return LoraSpec(id=path.stem, name=path.stem, path=path, weight=weight, short_hash='', key=path.stem)

		job([])
		generation = _timed(lambda index: job([]), repeats)
		# The first LoRAs on a model attach new adapters (new peft modules).
		first = _timed(lambda index: job([lora(index)], 0), slots)

		def fresh_cycle(index: int) -> None:
			job([lora(index + slots)], 0)  # adapters full: the least recently used one is hotswapped
			job([], 0)

		fresh = _timed(fresh_cycle, repeats)
		job([lora(0), lora(1)], 0)
		switch = _timed(lambda index: job([lora(index % 2, 0.5 + index % 2 * 0.25)], 0), repeats)
		same = _timed(lambda index: job([lora(0)], 0), repeats)
	return [
		(f'tiny generation, {steps} steps, median', f'{generation * 1000:.1f} ms'),
		('first LoRAs on a model: attach + select, median', f'{first * 1000:.1f} ms'),
		('new LoRA, adapters full: hotswap + select + remove, median', f'{fresh * 1000:.1f} ms'),
		('ratio (apply + remove) / generation (goal <= 0.10)', f'{fresh / generation:.3f}'),
		('ratio first attach / generation', f'{first / generation:.3f}'),
		('switch between attached LoRAs / weights, median', f'{switch * 1000:.2f} ms'),
		('same LoRA set again (nothing re-applied), median', f'{same * 1000:.3f} ms'),
		('ratio cached set / generation', f'{same / generation:.4f}'),
	]
