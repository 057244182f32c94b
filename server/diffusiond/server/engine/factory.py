"""Builds the production engine and its model cache bounds from the settings."""

import psutil

from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.device import choose_device, choose_dtype
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.jobs.engine_api import CacheBounds
from diffusiond.server.settings import Settings


def cache_bounds(settings: Settings) -> CacheBounds:
	models = settings.models
	return CacheBounds(
		max_models=models.cache_max_models, max_bytes=models.cache_max_bytes or psutil.virtual_memory().total // 2
	)


def default_engine(settings: Settings, bounds: CacheBounds) -> DiffusersEngine:
	device = choose_device(settings.device)
	dtype = choose_dtype(settings.device, device)
	return DiffusersEngine(
		device,
		dtype,
		PipelineCache(bounds.max_models, bounds.max_bytes),
		settings.models.allow_pickle,
		settings.loras,
		settings.device,
		settings.storage.previewers_dir,
	)
