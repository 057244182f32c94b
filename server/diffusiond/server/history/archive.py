"""The archive format: a zip of JSON documents (styles, catalog metadata, history) and optional images.

Reading checks every member name (a fixed set of documents, or `images/` plus a relative path that stays
inside the outputs folder) and caps the unpacked size before anything is read, so a hostile archive can
neither write outside the folder (zip-slip) nor fill the disk (zip bomb).
"""

import json
import zipfile
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.history.files import write_file
from diffusiond.server.history.schemas import GenerationRecord

FORMAT = 'diffusiond-archive'
VERSION = 1
DOCUMENTS = ('manifest.json', 'styles.json', 'models.json', 'loras.json', 'generations.json')
MAX_UNPACKED_BYTES = 64 * 1024**3
MAX_DOCUMENT_BYTES = 512 * 1024**2


class Manifest(BaseModel):
	format: str
	version: int


class StyleEntry(BaseModel):
	name: str
	prompt: str = ''
	negative_prompt: str = ''
	description: str = ''
	tags: list[str] = Field(default_factory=list)


class ModelEntry(BaseModel):
	name: str
	sha256: str | None = None
	display_name: str = ''
	tags: list[str] = Field(default_factory=list)
	default_sampler: str | None = None
	default_steps: int | None = None
	default_guidance: float | None = None


class LoraEntry(BaseModel):
	name: str
	sha256: str | None = None
	display_name: str = ''
	tags: list[str] = Field(default_factory=list)
	trigger_words: list[str] | None = None
	default_weight: float = 1.0
	enabled: bool = True


class ArchiveContents(BaseModel):
	styles: list[StyleEntry] = Field(default_factory=list)
	models: list[ModelEntry] = Field(default_factory=list)
	loras: list[LoraEntry] = Field(default_factory=list)
	generations: list[GenerationRecord] = Field(default_factory=list)


def _invalid(text: str) -> InvalidArgumentError:
	return InvalidArgumentError([FieldViolation(field='archive', description=f'{text}; nothing was imported')])


def write_archive(target: Path, contents: ArchiveContents, outputs_dir: Path | None) -> None:
	"""`outputs_dir` given: the generations' image files go in too."""
	with zipfile.ZipFile(target, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
		archive.writestr('manifest.json', Manifest(format=FORMAT, version=VERSION).model_dump_json())
		for name, items in (('styles', contents.styles), ('models', contents.models), ('loras', contents.loras)):
			archive.writestr(f'{name}.json', TypeAdapter(type(items)).dump_json(items))
		archive.writestr('generations.json', TypeAdapter(list[GenerationRecord]).dump_json(contents.generations))
		if outputs_dir is not None:
			for record in contents.generations:
				for image in record.images:
					source = outputs_dir / image.path
					if source.is_file():
						archive.write(source, f'images/{image.path}', compress_type=zipfile.ZIP_STORED)


def _image_name(name: str) -> str | None:
	"""The relative outputs path of an `images/...` member, or None if it is not a safe one."""
	path = PurePosixPath(name)
	if path.parts[:1] != ('images',) or len(path.parts) < 2 or path.is_absolute():
		return None
	relative = PurePosixPath(*path.parts[1:])
	if any(part in ('', '.', '..') or part.startswith('.') for part in relative.parts) or '\\\\' in name:
		return None
	return relative.as_posix()


def read_archive(source: Path) -> tuple[ArchiveContents, dict[str, str]]:
	"""The documents, and image member name → relative outputs path; InvalidArgumentError for a bad archive."""
	try:
		with zipfile.ZipFile(source) as archive:
			members = archive.infolist()
			images: dict[str, str] = {}
			for member in members:
				if member.is_dir():
					continue
				if member.filename in DOCUMENTS:
					if member.file_size > MAX_DOCUMENT_BYTES:
						raise _invalid(f'{member.filename} is too large')
					continue
				relative = _image_name(member.filename)
				if relative is None:
					raise _invalid(f'the archive holds {member.filename!r}, which is not a place it may write')
				images[member.filename] = relative
			if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
				raise _invalid('the archive unpacks to more than 64 GiB')
			names = {member.filename for member in members}
			if 'manifest.json' not in names:
				raise _invalid('not a diffusiond archive (no manifest.json)')
			manifest = Manifest.model_validate_json(archive.read('manifest.json'))
			if manifest.format != FORMAT or manifest.version > VERSION:
				raise _invalid(f'unsupported archive format {manifest.format!r} version {manifest.version}')
			documents = {
				name.removesuffix('.json'): json.loads(archive.read(name)) for name in DOCUMENTS[1:] if name in names
			}
			contents = ArchiveContents.model_validate(documents)
	except (zipfile.BadZipFile, ValidationError, ValueError, OSError) as exc:
		raise _invalid(f'the archive is damaged or not one of ours ({type(exc).__name__}: {str(exc)[:200]})') from exc
	return contents, images


def extract_images(source: Path, images: dict[str, str], wanted: set[str], outputs_dir: Path) -> list[Path]:
	"""Extracts the wanted images (temp + rename) and returns the files written."""
	written: list[Path] = []
	with zipfile.ZipFile(source) as archive:
		for member, relative in images.items():
			if relative in wanted and not (outputs_dir / relative).exists():
				write_file(outputs_dir / relative, archive.read(member))
				written.append(outputs_dir / relative)
	return written
