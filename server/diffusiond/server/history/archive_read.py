"""Reading an archive with bounded memory, refusing it whole at the first thing that is not ours to take.

Member names are checked before anything is read (a fixed set of documents, or `images/` + an outputs
path of the layout, so nothing can land outside the outputs folder). Every member is read through a
counting reader with its own cap, whatever the zip's headers claim, so a zip bomb costs at most the cap.
History records are parsed one line at a time (version 2) and an image is checked by the image guard
(format, pixel cap, the size its record states) before it is written into place.
"""

import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from diffusiond.server.errors import DiffusiondError, FieldViolation, InvalidArgumentError
from diffusiond.server.history.archive_format import (
	DOCUMENTS,
	FORMAT,
	GENERATIONS,
	GENERATIONS_V1,
	MANIFEST,
	SMALL_DOCUMENTS,
	VERSION,
	CatalogContents,
	Manifest,
)
from diffusiond.server.history.outputs import Outputs
from diffusiond.server.images import decode_image
from diffusiond.server.records import GenerationRecord, StoredImage
from diffusiond.server.tasks.legacy import upgrade_spec

MAX_MANIFEST_BYTES = 64 * 1024
MAX_SMALL_DOCUMENT_BYTES = 32 * 1024**2  # styles, models, LoRAs: far beyond any real catalog
MAX_V1_GENERATIONS_BYTES = 64 * 1024**2  # version 1 holds the history as one JSON array, parsed whole
MAX_RECORD_BYTES = 1024**2  # one line of generations.jsonl
MAX_IMAGE_BYTES = 96 * 1024**2  # a 4096x4096 RGBA PNG stored uncompressed is 64 MiB
_CHUNK = 1024 * 1024
_DOCUMENT = TypeAdapter(dict[str, object])
_DOCUMENTS = TypeAdapter(list[dict[str, object]])
M = TypeVar('M', bound=BaseModel)


def invalid(text: str) -> InvalidArgumentError:
	return InvalidArgumentError([FieldViolation(field='archive', description=f'{text}; nothing was imported')])


def _image_member(name: str) -> str | None:
	"""The outputs path of an `images/...` member, or None if it is not a safe one."""
	path = PurePosixPath(name)
	if path.is_absolute() or path.parts[:1] != ('images',) or len(path.parts) < 2 or '\\' in name:
		return None
	relative = PurePosixPath(*path.parts[1:])
	if any(part in ('', '.', '..') or part.startswith('.') for part in relative.parts):
		return None
	return relative.as_posix()


class ArchiveReader:
	"""An open archive whose member names have been checked; every read is capped."""

	def __init__(self, source: Path) -> None:
		try:
			self._zip = zipfile.ZipFile(source)
		except (zipfile.BadZipFile, OSError, ValueError) as exc:
			raise invalid(f'the archive is not a zip file ({type(exc).__name__})') from exc
		self.images: dict[str, str] = {}  # outputs path → member name
		seen: set[str] = set()
		for member in self._zip.infolist():
			name = member.filename
			if name in seen:
				raise invalid(f'the archive holds {name!r} twice')
			seen.add(name)
			if member.is_dir() or name in DOCUMENTS:
				continue
			relative = _image_member(name)
			if relative is None:
				raise invalid(f'the archive holds {name!r}, which is not a place it may write')
			self.images[relative] = name
		if MANIFEST not in seen:
			raise invalid('not a diffusiond archive (no manifest.json)')
		self._names = seen
		manifest = self._parse(MANIFEST, MAX_MANIFEST_BYTES, Manifest)
		if manifest.format != FORMAT or not 1 <= manifest.version <= VERSION:
			raise invalid(f'unsupported archive format {manifest.format!r} version {manifest.version}')
		self.version = manifest.version

	def close(self) -> None:
		self._zip.close()

	def _read(self, name: str, cap: int) -> bytes:
		"""The member's bytes, refused past `cap` whatever its header says (and its CRC checked)."""
		parts: list[bytes] = []
		size = 0
		try:
			with self._zip.open(name) as member:
				while chunk := member.read(min(_CHUNK, cap + 1 - size)):
					size += len(chunk)
					parts.append(chunk)
					if size > cap:
						raise invalid(f'{name} is larger than {cap // 1024**2 or 1} MiB')
		except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
			raise invalid(f'{name} is damaged ({type(exc).__name__}: {str(exc)[:200]})') from exc
		return b''.join(parts)

	def _parse(self, name: str, cap: int, model: type[M]) -> M:
		try:
			return model.model_validate_json(self._read(name, cap))
		except ValidationError as exc:
			raise invalid(f'{name} is damaged or not one of ours ({_first_error(exc)})') from exc

	def catalog(self) -> CatalogContents:
		found: dict[str, object] = {}
		for name in SMALL_DOCUMENTS:
			if name in self._names:
				data = self._read(name, MAX_SMALL_DOCUMENT_BYTES)
				try:
					found[name.removesuffix('.json')] = TypeAdapter(list[object]).validate_json(data)
				except ValidationError as exc:
					raise invalid(f'{name} is damaged or not one of ours ({_first_error(exc)})') from exc
		try:
			return CatalogContents.model_validate(found)
		except ValidationError as exc:
			raise invalid(f'the catalog documents are damaged or not ours ({_first_error(exc)})') from exc

	def records(self) -> Iterator[GenerationRecord]:
		"""The history records, one at a time (version 2), or from the one bounded array (version 1)."""
		if GENERATIONS in self._names:
			yield from self._lines()
		elif GENERATIONS_V1 in self._names:
			data = self._read(GENERATIONS_V1, MAX_V1_GENERATIONS_BYTES)
			try:
				documents = _DOCUMENTS.validate_json(data)
			except ValidationError as exc:
				raise invalid(f'{GENERATIONS_V1} is damaged or not one of ours ({_first_error(exc)})') from exc
			for number, document in enumerate(documents, 1):
				yield _record(document, f'{GENERATIONS_V1} record {number}')

	def _lines(self) -> Iterator[GenerationRecord]:
		try:
			with self._zip.open(GENERATIONS) as member:
				number = 0
				while line := member.readline(MAX_RECORD_BYTES + 1):
					number += 1
					if len(line) > MAX_RECORD_BYTES:
						raise invalid(f'{GENERATIONS} line {number} is longer than 1 MiB')
					if line.strip():
						yield _record(_document(line, number), f'{GENERATIONS} line {number}')
		except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
			if isinstance(exc, DiffusiondError):
				raise
			raise invalid(f'{GENERATIONS} is damaged ({type(exc).__name__}: {str(exc)[:200]})') from exc

	def extract(self, image: StoredImage, outputs: Outputs, max_pixels: int) -> bool:
		"""Writes image `image.path` from the archive into place once checked; False if the archive lacks it."""
		member = self.images.get(image.path)
		if member is None:
			return False
		data = self._read(member, MAX_IMAGE_BYTES)
		try:
			decoded = decode_image(data, max_pixels, 'archive')
		except DiffusiondError as exc:
			raise invalid(f'{member} is not an image it may hold ({exc.message})') from exc
		kind = f'image/{(decoded.format or "").lower()}'.replace('image/mpo', 'image/jpeg')
		if kind != image.mime_type or decoded.size != (image.width, image.height):
			raise invalid(
				f'{member} is a {decoded.width}x{decoded.height} {kind}, but its record says '
				f'{image.width}x{image.height} {image.mime_type}'
			)
		outputs.write(image.path, data)
		return True


def _document(line: bytes, number: int) -> dict[str, object]:
	try:
		return _DOCUMENT.validate_json(line)
	except ValidationError as exc:
		raise invalid(f'{GENERATIONS} line {number} is damaged or not one of ours ({_first_error(exc)})') from exc


def _record(document: dict[str, object], where: str) -> GenerationRecord:
	"""One record; a spec of the first wave (archives 1 and 2) is read in today's layout first."""
	spec = document.get('spec')
	if isinstance(spec, dict):
		document = {**document, 'spec': upgrade_spec({str(key): value for key, value in spec.items()})}
	try:
		return GenerationRecord.model_validate(document)
	except ValidationError as exc:
		raise invalid(f'{where} is damaged or not one of ours ({_first_error(exc)})') from exc


def _first_error(exc: ValidationError) -> str:
	error = exc.errors(include_url=False, include_input=False)[0]
	where = '.'.join(str(part) for part in error['loc'])
	return f'{where}: {error["msg"]}'[:300] if where else str(error['msg'])[:300]
