"""Loads a pipeline from a diffusers folder or a single checkpoint file, offline, safetensors first.

Called on the worker thread only. Pickle checkpoints are refused unless allowed, and then opened
with `torch.load(weights_only=True)` before diffusers sees them, so a payload can never run.
"""

import logging
import pickle
import zipfile
from pathlib import Path

import torch
from diffusers import (
	DiffusionPipeline,
	StableDiffusionPipeline,
	StableDiffusionXLImg2ImgPipeline,
	StableDiffusionXLPipeline,
)
from safetensors import SafetensorError

from diffusiond.server.catalog.schemas import ModelBase, ModelFormat, ModelInfo, is_refiner
from diffusiond.server.engine.prediction import settle_sd2_prediction
from diffusiond.server.errors import ModelLoadError

log = logging.getLogger(__name__)
# What reading a damaged or foreign file raises, from diffusers, transformers and safetensors alike.
LOAD_ERRORS = (
	OSError,
	ValueError,
	KeyError,
	TypeError,
	RuntimeError,
	AttributeError,
	pickle.UnpicklingError,
	SafetensorError,
)


def check_pickle(path: Path) -> None:
	"""Opens a pickle checkpoint the only safe way (tensors and plain containers only)."""
	try:
		torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
	except pickle.UnpicklingError as exc:
		raise ModelLoadError(
			f'{path.name} holds objects other than tensors and was refused (weights_only=True): {exc}'
		) from exc


def _from_folder(model: ModelInfo, dtype: torch.dtype, allow_pickle: bool) -> DiffusionPipeline:
	pipe: DiffusionPipeline = DiffusionPipeline.from_pretrained(
		str(model.path),
		dtype=dtype,
		safety_checker=None,
		requires_safety_checker=False,
		local_files_only=True,
		use_safetensors=None if allow_pickle else True,
	)
	return pipe


def _from_file(model: ModelInfo, dtype: torch.dtype) -> DiffusionPipeline:
	if model.config_dir is None:
		raise ModelLoadError(f'no local component configs for single-file checkpoint {model.name!r}')
	if model.format is ModelFormat.PICKLE:
		check_pickle(model.path)
	cls = StableDiffusionXLPipeline if model.base is ModelBase.SDXL else StableDiffusionPipeline
	if is_refiner(model.base, model.arch):
		cls = StableDiffusionXLImg2ImgPipeline
	pipe: DiffusionPipeline = cls.from_single_file(
		str(model.path),
		config=str(model.config_dir),
		local_files_only=True,
		dtype=dtype,
		safety_checker=None,
		requires_safety_checker=False,
	)
	if model.base is ModelBase.SD2:
		settle_sd2_prediction(pipe, model.name)
	return pipe


def load_pipeline(model: ModelInfo, dtype: torch.dtype, allow_pickle: bool) -> DiffusionPipeline:
	"""The pipeline for `model` on the CPU (the caller moves it to the device)."""
	if model.format is ModelFormat.PICKLE and not allow_pickle:
		raise ModelLoadError(
			f'{model.name!r} is a pickle checkpoint; set DIFFUSIOND_MODELS__ALLOW_PICKLE=true to load it'
		)
	log.info('loading model %s from %s (%s)', model.name, model.path, dtype)
	try:
		pipe = (
			_from_folder(model, dtype, allow_pickle)
			if model.format is ModelFormat.DIFFUSERS
			else _from_file(model, dtype)
		)
	except ModelLoadError:
		raise
	except LOAD_ERRORS as exc:
		raise ModelLoadError(
			f'model {model.name!r} could not be loaded from {model.path}: {type(exc).__name__}: {exc}',
			metadata={'model': model.name},
		) from exc
	pipe.set_progress_bar_config(disable=True)
	return pipe


def pipeline_bytes(pipe: DiffusionPipeline) -> int:
	"""Bytes of every parameter and buffer of the pipeline's torch modules."""
	total = 0
	for component in pipe.components.values():
		if isinstance(component, torch.nn.Module):
			tensors = [*component.parameters(), *component.buffers()]
			total += sum(tensor.numel() * tensor.element_size() for tensor in tensors)
	return total
