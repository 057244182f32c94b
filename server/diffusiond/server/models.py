"""Finds diffusers model folders inside the models folder and resolves client-supplied names safely.

A minimal locator for the spine; the persistent catalog (probing, hashing, single files) replaces
the scan behind the same `resolve` contract.
"""

import json
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.errors import ModelNotFoundError

DEMO_MODEL_NAME = 'demo-tiny-random'
DEMO_MARKER = 'DIFFUSIOND_DEMO_MODEL'
_NATIVE_SIZE_FALLBACK = 512


class ModelInfo(BaseModel):
	name: str
	path: Path
	native_size: int
	demo: bool


def _native_size(folder: Path) -> int:
	"""UNet sample size x VAE scale factor, read from the folder's JSON configs (no tensors)."""
	try:
		unet = json.loads((folder / 'unet' / 'config.json').read_text())
		vae = json.loads((folder / 'vae' / 'config.json').read_text())
		return int(unet['sample_size']) << (len(vae['block_out_channels']) - 1)
	except (OSError, ValueError, KeyError, TypeError):
		return _NATIVE_SIZE_FALLBACK


def inside(root: Path, name: str) -> Path:
	"""`root / name`, resolved (symlinks included); raises ModelNotFoundError if it escapes `root`."""
	root = root.resolve()
	candidate = (root / name).resolve()
	if candidate == root or not candidate.is_relative_to(root):
		raise ModelNotFoundError(f'model name {name!r} does not name a folder inside the models folder')
	return candidate


def describe(folder: Path) -> ModelInfo:
	return ModelInfo(
		name=folder.name,
		path=folder,
		native_size=_native_size(folder),
		demo=(folder / DEMO_MARKER).exists(),
	)


def _folders(models_dir: Path) -> list[Path]:
	"""Diffusers folders (holding model_index.json) directly inside `models_dir`, by name, none escaping it."""
	if not models_dir.is_dir():
		return []
	root = models_dir.resolve()
	return [
		entry
		for entry in sorted(models_dir.iterdir())
		if (entry / 'model_index.json').is_file() and entry.resolve().is_relative_to(root)
	]


def scan(models_dir: Path) -> list[ModelInfo]:
	"""Every diffusers folder directly inside `models_dir`, described."""
	return [describe(folder) for folder in _folders(models_dir)]


class ModelLocator:
	"""Resolves model names against the models folder. Blocking file I/O: call through a thread."""

	def __init__(self, models_dir: Path, default_model: str) -> None:
		self._models_dir = models_dir
		self._default = default_model

	@property
	def models_dir(self) -> Path:
		return self._models_dir

	def default_name(self) -> str:
		if self._default:
			return self._default
		names = [folder.name for folder in _folders(self._models_dir)]
		real = [name for name in names if name != DEMO_MODEL_NAME]
		return (real or names or [''])[0]

	def resolve(self, name: str) -> ModelInfo:
		"""The model called `name` (empty = the default model)."""
		wanted = name or self.default_name()
		if not wanted:
			raise ModelNotFoundError(
				f'no model is installed: put a diffusers model folder into {self._models_dir} '
				'or start the daemon with the demo model enabled'
			)
		folder = inside(self._models_dir, wanted)
		if not (folder / 'model_index.json').is_file():
			available = ', '.join(entry.name for entry in _folders(self._models_dir)) or 'none'
			raise ModelNotFoundError(
				f'model {wanted!r} not found in {self._models_dir}; available models: {available}',
				metadata={'model': wanted},
			)
		return describe(folder)
