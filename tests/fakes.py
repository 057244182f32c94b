"""A fake backend: the one seam where tests replace the real pipeline, for queue and cancel timing."""

import os
import threading
import time

from PIL import Image

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.pipeline.backend import RunOutput
from diffusiond.server.pipeline.cache import CachedModel
from diffusiond.server.pipeline.denoise import PreviewHook, StepHook
from diffusiond.server.pipeline.device import DeviceStats
from diffusiond.server.schemas import JobSpec


class FakeBackend:
	def __init__(
		self, step_s: float = 0.01, load_s: float = 0.0, crash_on_prompt: str = '', noise: bool = False
	) -> None:
		self.step_s = step_s
		self.noise = noise  # random pixels: images that do not compress (large messages)
		self.load_s = load_s
		self.crash_on_prompt = crash_on_prompt
		self.runs: list[JobSpec] = []
		self.completed_steps: list[int] = []
		self.started = threading.Event()
		self._loaded: list[ModelInfo] = []

	def load(self, model: ModelInfo) -> None:
		time.sleep(self.load_s)
		self._loaded = [model]

	def unload(self, model_id: str) -> bool:
		found = any(model.id == model_id for model in self._loaded)
		self._loaded = [model for model in self._loaded if model.id != model_id]
		return found

	def unload_all(self) -> None:
		self._loaded = []

	def cached(self) -> list[CachedModel]:
		return [CachedModel(info=model, bytes=0, active=True) for model in self._loaded]

	def prepare(self, spec: JobSpec) -> str:
		return 'FakeScheduler'

	def run(self, spec: JobSpec, on_step: StepHook, on_preview: PreviewHook | None = None) -> RunOutput:
		self.runs.append(spec)
		self.started.set()
		if self.crash_on_prompt and spec.prompt == self.crash_on_prompt:
			raise RuntimeError('simulated pipeline crash')
		for step in range(1, spec.steps + 1):
			time.sleep(self.step_s)
			self.completed_steps.append(step)
			on_step(step, spec.steps)
		if self.noise:
			return RunOutput(
				images=[
					Image.frombytes('RGB', (spec.width, spec.height), os.urandom(spec.width * spec.height * 3))
					for _ in spec.seeds
				]
			)
		return RunOutput(
			images=[Image.new('RGB', (spec.width, spec.height), (seed % 256, 0, 0)) for seed in spec.seeds]
		)

	def stats(self) -> DeviceStats:
		return DeviceStats(kind='cpu', name='fake', dtype='float32')
