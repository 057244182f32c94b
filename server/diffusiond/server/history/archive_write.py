"""Writing an archive (version 2) piece by piece from worker threads: the history is never held whole.

Image files are read through the outputs store (history/outputs.py), which reads only inside its folder or bucket
(symlinks included), so a record that names a path elsewhere can never carry an outside file out in an export.
"""

import logging
import zipfile
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter

from diffusiond.server.history.archive_format import FORMAT, GENERATIONS, IMAGES, MANIFEST, VERSION, CatalogContents
from diffusiond.server.history.archive_format import Manifest as ManifestDocument
from diffusiond.server.history.outputs import Outputs
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

	def images(self, outputs: Outputs, paths: list[str]) -> None:
		"""Closes the history document, then stores each image the outputs store has (a missing one is logged)."""
		if self._generations is not None:
			self._generations.close()
			self._generations = None
		for relative in paths:
			try:
				data = outputs.read(relative)
			except FileNotFoundError:
				log.warning('export: %r is not in %s; its file is left out', relative, outputs.where)
				continue
			self._zip.writestr(f'{IMAGES}{relative}', data, compress_type=zipfile.ZIP_STORED)

	def close(self) -> None:
		if self._generations is not None:
			self._generations.close()
		self._zip.close()
