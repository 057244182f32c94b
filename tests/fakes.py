"""A fake engine: the one seam where tests replace the real pipeline, for queue and cancel timing."""

import os
import threading
import time
from pathlib import Path

from PIL import Image

from diffusiond.server.catalog.asset_schemas import UpscalerProbe
from diffusiond.server.catalog.schemas import ModelFormat, ModelInfo, ModelStatus, Probe
from diffusiond.server.jobs.engine_api import (
	CachedModel,
	DeviceStats,
	PreviewHook,
	RunOutput,
	StageHook,
	StepHook,
	TileHook,
)
from diffusiond.server.schemas import JobSpec, Stage
from diffusiond.server.tasks.upscale import UpscaleSpec


class FakeEngine:
	def __init__(
		self,
		step_s: float = 0.01,
		load_s: float = 0.0,
		crash_on_prompt: str = '',
		noise: bool = False,
		endless: tuple[str, ...] = (),
	) -> None:
		self.step_s = step_s
		self.endless = endless  # prompts whose jobs run until cancelled: a daemon busy however slow the machine is
		self.noise = noise  # random pixels: images that do not compress (large messages)
		self.load_s = load_s
		self.crash_on_prompt = crash_on_prompt
		self.runs: list[JobSpec] = []
		self.batches: list[list[str]] = []  # the prompts of each pipeline call
		self.completed_steps: list[int] = []
		self.started = threading.Event()
		self.upscale_hold = threading.Event()  # an upscale waits after its first tile until this is set
		self.upscale_hold.set()
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

	def plan(self, specs: list[JobSpec]) -> list[str]:
		return []

	def fits(self, specs: list[JobSpec]) -> bool:
		return True

	def run(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...] = (),
	) -> RunOutput:
		self.runs += specs
		self.batches.append([spec.prompt for spec in specs])
		self.started.set()
		spec = specs[0]
		if self.crash_on_prompt and any(job.prompt == self.crash_on_prompt for job in specs):
			raise RuntimeError('simulated pipeline crash')
		on_stage(Stage.DENOISING, spec.steps)
		step = 0
		while step < spec.steps:
			time.sleep(self.step_s)
			step = min(step + 1, spec.steps - 1) if spec.prompt in self.endless else step + 1
			self.completed_steps.append(step)
			if on_step(step, spec.steps):  # finish early (CancelJob finish_early, A1111's interrupt)
				break
		seeds = [seed for job in specs for seed in job.seeds]
		if self.noise:
			size = spec.width * spec.height * 3
			return RunOutput(
				images=[Image.frombytes('RGB', (spec.width, spec.height), os.urandom(size)) for _ in seeds]
			)
		return RunOutput(images=[Image.new('RGB', (spec.width, spec.height), (seed % 256, 0, 0)) for seed in seeds])

	def probe_pickle(self, path: Path) -> Probe:
		return Probe(format=ModelFormat.PICKLE, status=ModelStatus.INVALID, problem='the fake engine opens no pickles')

	def pickle_shapes(self, path: Path) -> dict[str, list[int]]:
		return {}

	def build_demo(self, folder: Path) -> Path:
		raise AssertionError('tests with the fake engine never build the demo model')

	def upscale(self, spec: UpscaleSpec, image: Image.Image, on_tile: TileHook) -> Image.Image:
		for tile in range(1, spec.progress_steps + 1):
			time.sleep(self.step_s)
			on_tile(tile)
			self.upscale_hold.wait(10)
		return image.resize((spec.width, spec.height))

	def describe_upscaler(self, path: Path) -> UpscalerProbe:
		return UpscalerProbe(architecture='Fake', scale=2, purpose='SR')  # any file is a x2 upscaler

	def stats(self) -> DeviceStats:
		return DeviceStats(kind='cpu', name='fake', dtype='float32')
