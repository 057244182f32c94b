"""Writing an archive (version 2) piece by piece from worker threads: the history is never held whole.

Image files are added only when they resolve inside the outputs folder (symlinks included), so a record
that names a path elsewhere can never carry an outside file out in an export.
"""

import logging
import zipfile
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter

from diffusiond.server.catalog.files import inside
from diffusiond.server.errors import InvalidArgumentError
from diffusiond.server.history.archive_format import FORMAT, GENERATIONS, IMAGES, MANIFEST, VERSION, CatalogContents
from diffusiond.server.history.archive_format import Manifest as ManifestDocument
from diffusiond.server.records import GenerationRecord

log = logging.getLogger(__name__)


class ArchiveWriter:
	def __init__(self, target: Path) -> None:
		self._zip = zipfile.ZipFile(target, 'w', compression=zipfile.ZIP_DEFLATED)
		self._generations: IO[bytes] | None = None

	def begin(self, catalog: CatalogContents) -> None:
		self._zip.writestr(MANIFEST, ManifestDocument(format=FORMAT, version=VERSION).model_dump_json())
		for name, items in (('styles', catalog.styles), ('models', catalog.models), ('loras', catalog.loras)):
			self._zip.writestr(f'{name}.json', TypeAdapter(type(items)).dump_json(items))
		self._generations = self._zip.open(GENERATIONS, 'w')

	def records(self, records: list[GenerationRecord]) -> None:
		assert self._generations is not None, 'begin() first'
		for record in records:
			self._generations.write(record.model_dump_json().encode() + b'\n')

	def images(self, outputs_dir: Path, paths: list[str]) -> None:
		"""Closes the history document, then stores each image that is a file inside `outputs_dir`."""
		if self._generations is not None:
			self._generations.close()
			self._generations = None
		for relative in paths:
			try:
				source = inside(outputs_dir, relative, 'path')
			except InvalidArgumentError:
				log.warning('export: %r is not a path inside %s; its file is left out', relative, outputs_dir)
				continue
			if source.is_file():
				self._zip.write(source, f'{IMAGES}{relative}', compress_type=zipfile.ZIP_STORED)

	def close(self) -> None:
		if self._generations is not None:
			self._generations.close()
		self._zip.close()
