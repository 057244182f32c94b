"""Tensors of an embedding or a VAE file: safetensors, or an allowed pickle opened with weights_only=True
(plain containers and tensors only; anything else is refused before it runs). Worker thread only."""

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from diffusiond.server.errors import AssetNotApplicableError

Tensors = dict[str, torch.Tensor]


def _flat(data: object, prefix: str = '') -> Tensors:
	"""Nested dicts of tensors as dotted keys ('string_to_param.*'); other values are left out."""
	found: Tensors = {}
	if isinstance(data, torch.nn.Module):
		data = dict(data.state_dict())
	if isinstance(data, dict):
		for key, value in data.items():
			found |= _flat(value, f'{prefix}{key}.')
	elif isinstance(data, torch.Tensor):
		found[prefix[:-1]] = data
	return found


def read_tensors(path: Path, allow_pickle: bool) -> Tensors:
	"""Every tensor of the file, on the CPU; FAILED_PRECONDITION for a file that cannot be read."""
	try:
		if path.suffix.lower() == '.safetensors':
			return load_file(path)
		if not allow_pickle:
			raise AssetNotApplicableError(f'{path.name} is a pickle file and pickles are not allowed')
		data: object = torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
	except pickle.UnpicklingError as exc:
		raise AssetNotApplicableError(f'{path.name} was refused by weights_only=True: {exc}') from None
	except (OSError, RuntimeError, ValueError, EOFError, SafetensorError) as exc:
		raise AssetNotApplicableError(f'{path.name} cannot be read: {exc}') from None
	while isinstance(data, dict) and 'state_dict' in data:
		data = data['state_dict']
	return _flat(data)


def pickle_shapes(path: Path) -> dict[str, list[int]]:
	"""An allowed pickle's tensor shapes (what a catalog probes); {} where it cannot be read."""
	try:
		return {key: list(value.shape) for key, value in read_tensors(path, True).items()}
	except AssetNotApplicableError:
		return {}
