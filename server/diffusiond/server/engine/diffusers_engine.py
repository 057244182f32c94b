"""The diffusers engine: loads pipelines and runs jobs. Called from the worker thread only.

It implements `jobs.engine_api.Engine`, the protocol the jobs side depends on (tests put a fake behind it).
"""

import itertools
import logging
import time
from functools import partial
from pathlib import Path
from typing import NoReturn

import diffusers
import torch
import transformers
from diffusers import DiffusionPipeline
from PIL import Image

from diffusiond.server.catalog.asset_schemas import UpscalerProbe
from diffusiond.server.catalog.schemas import ModelInfo, Probe
from diffusiond.server.engine.cache import Entry, PipelineCache, cache_key
from diffusiond.server.engine.controlnets import ControlNets
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.denoise import denoise, warm_up
from diffusiond.server.engine.device import device_stats, free_bytes, release_memory
from diffusiond.server.engine.embeddings import EmbeddingVectors
from diffusiond.server.engine.hooks import Hooks
from diffusiond.server.engine.loader import load_pipeline, pipeline_bytes
from diffusiond.server.engine.lora_apply import LoraFiles, apply_loras
from diffusiond.server.engine.memory_savers import always_on, memory_savers, pipeline_shape
from diffusiond.server.engine.options import apply_options
from diffusiond.server.engine.pickles import probe_pickle
from diffusiond.server.engine.preview import Previewers, TinyDecoders
from diffusiond.server.engine.refiner import RefinerRun
from diffusiond.server.engine.schedulers import make_scheduler
from diffusiond.server.engine.speedups import speedups
from diffusiond.server.engine.tensor_files import pickle_shapes
from diffusiond.server.engine.threads import set_threads
from diffusiond.server.engine.upscalers import Upscalers, describe, resize
from diffusiond.server.engine.vaes import VaeSwitch, watched_decode
from diffusiond.server.errors import DeviceOutOfMemoryError, ModelLoadError
from diffusiond.server.jobs.engine_api import (
	CachedModel,
	DeviceStats,
	PreviewHook,
	RunOutput,
	StageHook,
	StepHook,
	TileHook,
)
from diffusiond.server.jobs.memory import FREE_MARGIN, SAVERS, Estimate, estimate, savers_for
from diffusiond.server.schemas import JobSpec, Stage
from diffusiond.server.settings import DeviceSettings, LoraSettings
from diffusiond.server.tasks.upscale import DEFAULT_OVERLAP, DEFAULT_TILE, UpscaleSpec
from diffusiond.server.tasks.upscaler_file import UpscalerFile

log = logging.getLogger(__name__)

_CPU = torch.device('cpu')


def quiet_libraries() -> None:
	"""No progress bars or chatter from diffusers/transformers in a daemon's logs."""
	diffusers.utils.logging.disable_progress_bar()
	diffusers.utils.logging.set_verbosity_error()
	transformers.utils.logging.disable_progress_bar()
	transformers.utils.logging.set_verbosity_error()


class DiffusersEngine:
	"""An LRU cache of pipelines in RAM; the active one on the device."""

	def __init__(
		self,
		device: torch.device,
		dtype: torch.dtype,
		cache: PipelineCache,
		allow_pickle: bool = False,
		loras: LoraSettings | None = None,
		options: DeviceSettings | None = None,
		previewers_dir: Path | None = None,
	) -> None:
		self.device = device
		self._options = options or DeviceSettings()
		self.dtype = dtype
		self.allow_pickle = allow_pickle
		self._cache = cache
		self._lora_settings = loras or LoraSettings()
		self._lora_files = LoraFiles(self._lora_settings.cache_max_bytes)
		self._active: Entry | None = None
		self._vectors = EmbeddingVectors(allow_pickle)
		self._vaes = VaeSwitch(allow_pickle)
		self._controls = ControlNets()
		self._refiner = RefinerRun(self._load_refiner, self._lora_files, self._vaes, self._lora_settings.max_adapters)
		self._previewers = Previewers(previewers_dir, device, dtype, self._options.preview_decoder)
		self._tiny_decoders = TinyDecoders(previewers_dir, device, dtype)  # fast_decode
		self._upscalers = Upscalers(device, dtype)
		set_threads(self._options.cpu_threads)
		quiet_libraries()

	def load(self, model: ModelInfo) -> None:
		"""Makes `model` the active pipeline: from the cache when it is there, else from disk.

		A failed load leaves every cached pipeline as it was."""
		entry = self._cache.get(cache_key(model))
		if entry is None:
			pipe = load_pipeline(model, self.dtype, self.allow_pickle)
			self_placed = apply_options(pipe, self._options, self.device)
			entry = Entry(
				info=model,
				pipe=pipe,
				scheduler=pipe.scheduler,
				vae=getattr(pipe, 'vae', None),
				bytes=pipeline_bytes(pipe),
				self_placed=self_placed,
			)
			evicted = self._cache.put(entry)
			if evicted:
				if any(old is self._active for old in evicted):
					self._active = None
				log.info('evicted from the model cache: %s', ', '.join(old.info.name for old in evicted))
				del evicted  # the last references: release_memory can now give their memory back
				release_memory(self.device)
		self._activate(entry)
		if self._options.compile and not entry.warmed:
			started = time.monotonic()
			warm_up(entry.pipe, entry.info.native_size)
			entry.warmed = True
			log.info('compiled and warmed up %s in %.1fs', entry.info.name, time.monotonic() - started)

	def _activate(self, entry: Entry) -> None:
		if entry is self._active:
			return
		if self.device == _CPU or entry.self_placed:  # nothing to move: a pointer change
			self._active = entry
			return
		if self._active is not None:
			self._active.pipe.to(_CPU)  # stays cached in RAM; only the active model holds device memory
		self._active = None
		try:
			entry.pipe.to(self.device)
		except torch.OutOfMemoryError as exc:
			entry.pipe.to(_CPU)
			release_memory(self.device)
			raise DeviceOutOfMemoryError(f'model {entry.info.name!r} does not fit into device memory') from exc
		self._active = entry

	def unload(self, model_id: str) -> bool:
		entry = self._cache.pop(model_id)
		if entry is None:
			return False
		log.info('unloading model %s (%d MiB)', entry.info.name, entry.bytes >> 20)
		if entry is self._active:
			self._active = None
		self._vaes.forget(model_id)
		del entry
		release_memory(self.device)
		return True

	def unload_all(self) -> None:
		self._active = None
		self._controls.forget()
		self._upscalers.unload_all()
		self._cache.clear()
		release_memory(self.device)

	def active_pipeline(self) -> DiffusionPipeline | None:
		return self._active.pipe if self._active is not None else None

	def cached(self) -> list[CachedModel]:
		return [
			CachedModel(
				info=entry.info,
				bytes=entry.bytes,
				active=entry is self._active,
				loras=sorted(set(entry.adapters.names.values())),
			)
			for entry in self._cache.entries()
		]

	def _current(self, spec: JobSpec) -> Entry:
		if self._active is None or self._active.info.name != spec.model:
			raise ModelLoadError(f'model {spec.model!r} is not loaded')
		return self._active

	def prepare(self, spec: JobSpec) -> str:
		"""Sets the job's scheduler and exactly its LoRAs on the loaded pipeline; returns the scheduler's name."""
		current = self._current(spec)
		current.pipe.scheduler = make_scheduler(spec.sampler, current.scheduler, spec.schedule)
		limit = self._lora_settings.max_adapters
		apply_loras(current.pipe, current.adapters, spec.loras, self._lora_files, limit)
		if current.vae is not None:
			self._vaes.use(current.pipe, current.vae, cache_key(current.info), spec.vae)
		return type(current.pipe.scheduler).__name__

	def plan(self, specs: list[JobSpec]) -> list[str]:
		"""The memory savers this call needs on top of those the settings keep on (jobs/memory.py): its estimate from
		the loaded model's shape against `device.memory_budget_bytes`, else what the device has free now."""
		return savers_for(self._estimate(specs), self._budget(), always_on(self._options))

	def fits(self, specs: list[JobSpec]) -> bool:
		"""Whether one call of `specs` fits with every saver on (a dynamic batch that would not is split); a model not
		loaded yet is left to the plan and the out-of-memory retry."""
		if self._active is None or self._active.info.name != specs[0].model:
			return True
		return self._estimate(specs).peak(list(SAVERS)) <= self._budget()

	def _estimate(self, specs: list[JobSpec]) -> Estimate:
		spec = specs[0]
		width, height = spec.task.output_size(spec.width, spec.height)
		images = sum(len(job.seeds) for job in specs)
		shape = pipeline_shape(self._current(spec).pipe, self.dtype)
		return estimate(width, height, images, spec.guidance_scale > 1, shape)

	def _budget(self) -> int:
		return self._options.memory_budget_bytes or int(free_bytes(self.device) * FREE_MARGIN)

	def run(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...] = (),
	) -> RunOutput:
		"""Every image of `specs` in one pipeline call: one job, or a batch of jobs that share everything but
		prompts and seeds (jobs/batching.py), with `savers` on (plan()). Out of memory, it runs once more with every
		saver on before it fails."""
		notices: list[str] = []
		every = tuple(saver for saver in SAVERS if saver not in always_on(self._options))
		images = self._attempt(specs, on_step, on_previews, on_stage, savers, notices)
		if images is None and not set(savers) >= set(every):
			notices.append(f'the device ran out of memory; the job ran again with {", ".join(every)} on')
			images = self._attempt(specs, on_step, on_previews, on_stage, every, notices)
		if images is None:
			self._out_of_memory(specs)
		return RunOutput(images=images, notices=notices)

	def _attempt(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...],
		notices: list[str],
	) -> list[Image.Image] | None:
		"""The call's images, or None when the device ran out of memory: its memory is released once the error and
		its traceback (which holds the failed call's tensors) are gone, so that a second attempt has it."""
		try:
			return self._denoise(specs, on_step, on_previews, on_stage, savers, notices)
		except torch.OutOfMemoryError:
			log.warning(
				'out of memory at %dx%d with %s', specs[0].width, specs[0].height, ', '.join(savers) or 'no saver'
			)
		release_memory(self.device)
		return None

	def _out_of_memory(self, specs: list[JobSpec]) -> NoReturn:
		spec = specs[0]
		count = sum(len(job.seeds) for job in specs)
		raise DeviceOutOfMemoryError(
			f'the device ran out of memory for {count} image(s) of {spec.width}x{spec.height}, also with every memory '
			'saver on; try fewer images or a smaller size'
			+ (' (this was a batch of several jobs: lower device.batch_max_images)' if len(specs) > 1 else '')
		)

	def _denoise(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...],
		notices: list[str],
	) -> list[Image.Image]:
		spec = specs[0]
		current = self._current(spec)
		previewer = partial(self._previewers.get, current.info.base)
		vectors = [{item.name: self._vectors.of(item) for item in job.embeddings} for job in specs]
		fast = self._tiny_decoders.get(current.info.base) if spec.fast_decode else None
		with (
			watched_decode(current.pipe.vae, notices, partial(on_stage, Stage.DECODING, 0), fast),
			memory_savers(current.pipe, list(savers)),
			speedups(current.pipe, spec),
		):
			hooks = Hooks(step=on_step, stage=on_stage, upscale=self._hires_upscale)
			control = self._controls.inputs(spec.controlnets, current.pipe)
			decoding = partial(on_stage, Stage.DECODING, 0)
			refine = partial(self._refiner, spec, vectors[0], notices, decoding) if spec.refiner else None
			own = current.scheduler
			return denoise(current.pipe, previewer, specs, hooks, on_previews, vectors, own, control, refine)

	def upscale(self, spec: UpscaleSpec, image: Image.Image, on_tile: TileHook) -> Image.Image:
		"""UpscaleImage: a built-in resize (one step), or the folder's model tile by tile."""
		if spec.file is None:
			result = resize(image, (spec.width, spec.height), spec.upscaler)
			on_tile(1)
			return result
		done = itertools.count(1)
		tiles = (spec.tile_size, spec.tile_overlap)
		return self._upscalers.upscale(image, spec.file, (spec.width, spec.height), tiles, lambda: on_tile(next(done)))

	def _hires_upscale(self, image: Image.Image, file: UpscalerFile, size: tuple[int, int]) -> Image.Image:
		return self._upscalers.upscale(image, file, size, (DEFAULT_TILE, DEFAULT_OVERLAP), lambda: None)

	def describe_upscaler(self, path: Path) -> UpscalerProbe:
		return describe(path, self.allow_pickle)

	def _load_refiner(self, model: ModelInfo) -> Entry:
		"""A job's refiner, loaded and made the active pipeline (the job's model waits in the cache)."""
		self.load(model)
		if self._active is None:
			raise ModelLoadError(f'refiner {model.name!r} is not loaded')
		return self._active

	def stats(self) -> DeviceStats:
		return device_stats(self.device, self.dtype)

	def probe_pickle(self, path: Path) -> Probe:
		return probe_pickle(path)

	def pickle_shapes(self, path: Path) -> dict[str, list[int]]:
		return pickle_shapes(path)

	def build_demo(self, folder: Path) -> Path:
		return build_demo_model(folder)
