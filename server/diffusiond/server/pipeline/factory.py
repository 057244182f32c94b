"""Builds the production backend and its model cache from the settings."""

import psutil

from diffusiond.server.pipeline.backend import DiffusersBackend
from diffusiond.server.pipeline.cache import PipelineCache
from diffusiond.server.pipeline.device import choose_device, choose_dtype
from diffusiond.server.settings import Settings


def cache_limits(settings: Settings) -> PipelineCache:
	models = settings.models
	return PipelineCache(models.cache_max_models, models.cache_max_bytes or psutil.virtual_memory().total // 2)


def default_backend(settings: Settings, cache: PipelineCache) -> DiffusersBackend:
	device = choose_device(settings.device)
	dtype = choose_dtype(settings.device, device)
	return DiffusersBackend(
		device,
		dtype,
		cache,
		settings.models.allow_pickle,
		settings.loras,
		settings.device,
		settings.storage.previewers_dir,
	)
