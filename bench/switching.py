"""Model cache benchmarks: cold load vs warm switch, and memory before load, after load, after unload."""

import statistics
import tempfile
import time
from pathlib import Path

import psutil
import torch

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.device import release_memory
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.jobs.validation import resolve
from diffusiond.server.schemas import GenerateParams
from diffusiond.server.settings import LimitsSettings

MIB = 1 << 20
CHANNELS = (256, 512)  # ~340 MiB of float32 weights: big enough to measure, small enough for CI


def _touch(backend: DiffusersEngine, model: ModelInfo) -> None:
	"""One denoising step, so every weight is really in memory (safetensors maps them lazily)."""
	spec = resolve(GenerateParams(model=model.name, prompt='x', steps=1, seed=1), model, LimitsSettings())
	backend.prepare(spec)
	backend.run([spec], lambda step, total: False, [None], lambda stage, steps: None)


def _device_memory(device: torch.device) -> str:
	return f' / CUDA {torch.cuda.memory_allocated(device) // MIB} MiB' if device.type == 'cuda' else ''


def run_switching(repeats: int = 5) -> list[tuple[str, str]]:
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	process = psutil.Process()
	with tempfile.TemporaryDirectory() as scratch:
		models = [
			ModelInfo(id=name, name=name, path=build_demo_model(Path(scratch) / name, seed, CHANNELS), native_size=64)
			for seed, name in enumerate(('model-a', 'model-b'))
		]
		backend = DiffusersEngine(device, dtype, PipelineCache(2, 1 << 40))
		release_memory(device)
		baseline = process.memory_info().rss
		base_device = _device_memory(device)
		cold = []
		for model in models:
			start = time.perf_counter()
			backend.load(model)
			cold.append(time.perf_counter() - start)
			_touch(backend, model)
		loaded = process.memory_info().rss
		loaded_device = _device_memory(device)
		warm = []
		for index in range(repeats * 2):
			start = time.perf_counter()
			backend.load(models[index % 2])
			warm.append(time.perf_counter() - start)
		for model in models:
			backend.unload(model.id)
		after = process.memory_info().rss
		after_device = _device_memory(device)
	size = sum(entry.bytes for entry in backend.cached()) or 0
	cold_s, warm_s = statistics.median(cold), statistics.median(warm)
	return [
		(f'cold load ({CHANNELS} wide model, {dtype}), median', f'{cold_s * 1000:.1f} ms'),
		('warm switch between two cached models, median', f'{warm_s * 1000:.2f} ms'),
		('ratio warm switch / cold load (goal <= 0.10)', f'{warm_s / cold_s:.4f}'),
		('RSS before load' + base_device.replace(' / ', ', '), f'{baseline // MIB} MiB'),
		('RSS with two models loaded' + loaded_device.replace(' / ', ', '), f'{loaded // MIB} MiB'),
		('RSS after unloading both' + after_device.replace(' / ', ', '), f'{after // MIB} MiB'),
		('memory kept after unload / memory taken by load', f'{(after - baseline) / max(loaded - baseline, 1):.3f}'),
		('cache bytes after unload', f'{size}'),
	]
