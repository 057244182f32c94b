"""Where finished images are kept: the data folder's `outputs/` (the default, one per node) or an S3-compatible bucket
that every node reads (`storage.outputs_url`, history/s3_outputs.py). Every place that touches an image file (the
recorder, GetImage and thumbnails, deletes, archive export and import, start-up recovery) goes through this seam.

Paths are the layout's relative ones (history/layout.py). Each store writes all or nothing: a file appears whole
under its name or not at all. Calls block: run them in a thread. A missing image raises FileNotFoundError; a store
that cannot be reached raises another OSError."""

from pathlib import Path
from typing import Protocol

from diffusiond.server.catalog.files import inside
from diffusiond.server.errors import InvalidArgumentError
from diffusiond.server.history.files import remove_files, write_file
from diffusiond.server.history.s3_outputs import S3Outputs
from diffusiond.server.settings import StorageSettings


class Outputs(Protocol):
	@property
	def where(self) -> str:
		"""The store as people name it (a folder, `s3://bucket/prefix`), for messages."""
		...

	@property
	def folder(self) -> Path | None:
		"""The local folder that holds the images (start-up recovery scans it), None for a remote store."""
		...

	@property
	def shared(self) -> bool:
		"""Every node reads the same store: GetImage never needs to ask the node that made an image."""
		...

	def check(self) -> None:
		"""At start-up: the store can be used (OSError saying why not)."""
		...

	def write(self, relative: str, data: bytes) -> None: ...

	def read(self, relative: str) -> bytes: ...

	def exists(self, relative: str) -> bool: ...

	def remove(self, relatives: list[str]) -> None:
		"""Removes the images that are there (a missing one is no error)."""
		...


class FolderOutputs:
	"""The outputs folder; a path that would resolve outside it (a symlink, `..`) is treated as absent."""

	def __init__(self, folder: Path) -> None:
		self._folder = folder

	@property
	def where(self) -> str:
		return str(self._folder)

	@property
	def folder(self) -> Path | None:
		return self._folder

	@property
	def shared(self) -> bool:
		return False

	def _path(self, relative: str) -> Path | None:
		try:
			return inside(self._folder, relative, 'path')
		except InvalidArgumentError:
			return None

	def check(self) -> None:
		self._folder.mkdir(parents=True, exist_ok=True)

	def write(self, relative: str, data: bytes) -> None:
		path = self._path(relative)
		if path is None:
			raise PermissionError(f'{relative!r} is not a path inside {self._folder}')
		write_file(path, data)

	def read(self, relative: str) -> bytes:
		path = self._path(relative)
		if path is None:
			raise FileNotFoundError(f'{relative!r} is not a path inside {self._folder}')
		return path.read_bytes()

	def exists(self, relative: str) -> bool:
		path = self._path(relative)
		return path is not None and path.is_file()

	def remove(self, relatives: list[str]) -> None:
		remove_files([path for path in map(self._path, relatives) if path is not None])


def open_outputs(storage: StorageSettings) -> Outputs:
	"""The store `storage.outputs_url` names (empty: the data folder's outputs/)."""
	if not storage.outputs_url:
		return FolderOutputs(storage.outputs_dir)
	return S3Outputs(storage.outputs_url, storage.s3_endpoint_url, storage.s3_region)
