"""The seam between the worker and the device: what a backend does. `DiffusersBackend` is the real one;
tests put a fake behind it for queue and cancel timing."""

from typing import Protocol

from PIL import Image
from pydantic import BaseModel, ConfigDict

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.pipeline.cache import CachedModel
from diffusiond.server.pipeline.denoise import PreviewHook, StepHook
from diffusiond.server.pipeline.device import DeviceStats
from diffusiond.server.schemas import JobSpec


class RunOutput(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	images: list[Image.Image]


class Backend(Protocol):
	def load(self, model: ModelInfo) -> None: ...
	def unload(self, model_id: str) -> bool: ...
	def unload_all(self) -> None: ...
	def cached(self) -> list[CachedModel]: ...
	def prepare(self, spec: JobSpec) -> str: ...
	def run(self, spec: JobSpec, on_step: StepHook, on_preview: PreviewHook | None = None) -> RunOutput: ...
	def run_batch(
		self, specs: list[JobSpec], on_step: StepHook, on_previews: list[PreviewHook | None]
	) -> RunOutput: ...
	def stats(self) -> DeviceStats: ...
