"""Looks inside a pickle checkpoint, only where pickle is allowed, only with `weights_only=True`.

`weights_only` unpickling builds tensors and plain containers and refuses anything else before it
runs, so a malicious payload is reported, never executed. Tensors are memory-mapped where the file
format allows (zip-based checkpoints), so only the shapes are read.
"""

import pickle
import zipfile
from pathlib import Path

import torch

from diffusiond.server.catalog.probe import probe_header
from diffusiond.server.catalog.schemas import ModelFormat, ModelStatus, Probe


def _state_dict(data: object) -> dict[str, list[int]]:
	while isinstance(data, dict) and 'state_dict' in data:
		data = data['state_dict']
	if not isinstance(data, dict):
		return {}
	return {str(key): list(value.shape) for key, value in data.items() if isinstance(value, torch.Tensor)}


def probe_pickle(path: Path) -> Probe:
	try:
		data: object = torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
	except pickle.UnpicklingError as exc:
		problem = f'refused by weights_only=True: it holds objects other than tensors ({exc})'
		return Probe(format=ModelFormat.PICKLE, status=ModelStatus.INVALID, problem=problem)
	except (OSError, RuntimeError, ValueError, EOFError) as exc:
		return Probe(format=ModelFormat.PICKLE, status=ModelStatus.INVALID, problem=f'unreadable checkpoint: {exc}')
	probe = probe_header(_state_dict(data))
	status = ModelStatus.UNSAFE if probe.status is ModelStatus.READY else probe.status
	return probe.model_copy(update={'format': ModelFormat.PICKLE, 'status': status})
