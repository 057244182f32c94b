"""What the jobs side asks of the engine (engine/ implements it; tests put a fake behind it).

The jobs side never imports torch: it sees the engine through this protocol and these plain types. The
engine runs on the worker thread only and never calls back into the event loop; it reports steps and
previews through the plain callables it is given.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.catalog.asset_schemas import UpscalerProbe
from diffusiond.server.catalog.schemas import ModelInfo, Probe
from diffusiond.server.schemas import JobSpec, Stage
from diffusiond.server.tasks.upscale import UpscaleSpec

StepHook = Callable[[int, int], bool]  # steps done, steps in all (as the request counts them) → finish early now
PreviewHook = Callable[[int, bytes, int, int], None]  # step, JPEG, width, height
StageHook = Callable[[Stage, int], None]  # the stage entered, the steps it denoises (0 for the others)
TileHook = Callable[[int], None]  # tiles done (may raise to stop)


class RunOutput(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	images: list[Image.Image]
	notices: list[str] = Field(default_factory=list)  # what the engine did differently (a float32 re-decode)


class CachedModel(BaseModel):
	"""A cache entry as GetSystemInfo shows it."""

	info: ModelInfo
	bytes: int
	active: bool  # on the device (the others wait in RAM)
	loras: list[str] = Field(default_factory=list)  # the names of the LoRAs attached to it (no attach cost)


class DeviceStats(BaseModel):
	kind: str
	name: str
	dtype: str
	memory_total_bytes: int = 0
	memory_used_bytes: int = 0


class CacheBounds(BaseModel):
	"""How much the model cache may hold (GetSystemInfo shows it)."""

	max_models: int
	max_bytes: int


class Engine(Protocol):
	def load(self, model: ModelInfo) -> None: ...
	def unload(self, model_id: str) -> bool: ...
	def unload_all(self) -> None: ...
	def cached(self) -> list[CachedModel]: ...
	def prepare(self, spec: JobSpec) -> str: ...
	def plan(self, specs: list[JobSpec]) -> list[str]: ...
	def fits(self, specs: list[JobSpec]) -> bool: ...
	def run(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...] = (),
	) -> RunOutput: ...
	def stats(self) -> DeviceStats: ...
	def probe_pickle(self, path: Path) -> Probe: ...
	def pickle_shapes(self, path: Path) -> dict[str, list[int]]: ...
	def build_demo(self, folder: Path) -> Path: ...
	def upscale(self, spec: UpscaleSpec, image: Image.Image, on_tile: TileHook) -> Image.Image: ...
	def describe_upscaler(self, path: Path) -> UpscalerProbe: ...
