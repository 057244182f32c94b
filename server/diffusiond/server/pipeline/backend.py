"""The diffusers backend: loads pipelines and runs jobs. Called from the worker thread only.

`Backend` is the seam the manager depends on; tests put a fake behind it for queue and cancel timing.
"""

import gc
import logging
from collections.abc import Callable
from typing import Protocol

import diffusers
import torch
import transformers
from diffusers import SchedulerMixin, StableDiffusionPipeline
from PIL import Image
from pydantic import BaseModel, ConfigDict

from diffusiond.server.errors import DeviceOutOfMemoryError, ModelLoadError
from diffusiond.server.models import ModelInfo
from diffusiond.server.pipeline.device import DeviceStats, device_stats, release_memory
from diffusiond.server.pipeline.schedulers import make_scheduler
from diffusiond.server.schemas import JobSpec

log = logging.getLogger(__name__)

StepHook = Callable[[int, int], None]


class RunOutput(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	images: list[Image.Image]


class Backend(Protocol):
	def load(self, model: ModelInfo) -> None: ...
	def unload_all(self) -> None: ...
	def loaded(self) -> list[ModelInfo]: ...
	def prepare(self, spec: JobSpec) -> str: ...
	def run(self, spec: JobSpec, on_step: StepHook) -> RunOutput: ...
	def stats(self) -> DeviceStats: ...


class _Loaded(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	info: ModelInfo
	pipe: StableDiffusionPipeline
	scheduler: SchedulerMixin  # the model's own scheduler, whatever sampler ran last


def quiet_libraries() -> None:
	"""No progress bars or chatter from diffusers/transformers in a daemon's logs."""
	diffusers.utils.logging.disable_progress_bar()
	diffusers.utils.logging.set_verbosity_error()
	transformers.utils.logging.disable_progress_bar()
	transformers.utils.logging.set_verbosity_error()


def load_pipeline(path: str, device: torch.device, dtype: torch.dtype) -> StableDiffusionPipeline:
	"""Loads a diffusers folder the way a direct user call would, offline, safetensors only."""
	pipe = StableDiffusionPipeline.from_pretrained(
		path,
		dtype=dtype,
		safety_checker=None,
		requires_safety_checker=False,
		local_files_only=True,
		use_safetensors=True,
	)
	pipe.set_progress_bar_config(disable=True)
	moved: StableDiffusionPipeline = pipe.to(device)
	return moved


class DiffusersBackend:
	"""Holds the loaded pipeline (one at a time in this version) on one device."""

	def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
		self.device = device
		self.dtype = dtype
		self._loaded: _Loaded | None = None
		quiet_libraries()

	def load(self, model: ModelInfo) -> None:
		if self._loaded is not None and self._loaded.info.path == model.path:
			return
		self.unload_all()
		log.info('loading model %s from %s on %s (%s)', model.name, model.path, self.device, self.dtype)
		try:
			pipe = load_pipeline(str(model.path), self.device, self.dtype)
		except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
			raise ModelLoadError(
				f'model {model.name!r} could not be loaded from {model.path}: {exc}', metadata={'model': model.name}
			) from exc
		self._loaded = _Loaded(info=model, pipe=pipe, scheduler=pipe.scheduler)

	def unload_all(self) -> None:
		if self._loaded is None:
			return
		log.info('unloading model %s', self._loaded.info.name)
		self._loaded = None
		gc.collect()
		release_memory(self.device)

	def loaded(self) -> list[ModelInfo]:
		return [self._loaded.info] if self._loaded is not None else []

	def _current(self, spec: JobSpec) -> _Loaded:
		if self._loaded is None or self._loaded.info.name != spec.model:
			raise ModelLoadError(f'model {spec.model!r} is not loaded')
		return self._loaded

	def prepare(self, spec: JobSpec) -> str:
		"""Sets the job's scheduler on the loaded pipeline; returns its class name."""
		current = self._current(spec)
		current.pipe.scheduler = make_scheduler(spec.sampler, current.scheduler)
		return type(current.pipe.scheduler).__name__

	def run(self, spec: JobSpec, on_step: StepHook) -> RunOutput:
		pipe = self._current(spec).pipe

		def callback(
			pipeline: StableDiffusionPipeline, step: int, timestep: torch.Tensor, kwargs: dict[str, torch.Tensor]
		) -> dict[str, torch.Tensor]:
			on_step(step + 1, int(pipeline.num_timesteps))
			return kwargs

		generators = [torch.Generator(device='cpu').manual_seed(seed) for seed in spec.seeds]
		try:
			with torch.inference_mode():
				result = pipe(
					prompt=spec.prompt,
					negative_prompt=spec.negative_prompt or None,
					width=spec.width,
					height=spec.height,
					num_inference_steps=spec.steps,
					guidance_scale=spec.guidance_scale,
					num_images_per_prompt=len(spec.seeds),
					generator=generators,
					callback_on_step_end=callback,
				)
		except torch.OutOfMemoryError as exc:
			release_memory(self.device)
			raise DeviceOutOfMemoryError(
				f'the device ran out of memory for {len(spec.seeds)} image(s) of {spec.width}x{spec.height}; '
				'try fewer images or a smaller size'
			) from exc
		images: list[Image.Image] = list(result.images)
		return RunOutput(images=images)

	def stats(self) -> DeviceStats:
		return device_stats(self.device, self.dtype)
