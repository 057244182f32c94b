"""The models folder on disk: a fast scan that stats but never reads weights, and the sandbox check."""

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.catalog.probe import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES
from diffusiond.server.catalog.schemas import FileStamp
from diffusiond.server.errors import FieldViolation, InvalidArgumentError

CHECKPOINT_SUFFIXES = SAFETENSORS_SUFFIXES | PICKLE_SUFFIXES
HASH_CHUNK_BYTES = 8 * 1024 * 1024
MIN_HASH_PREFIX = 6


def is_hash_prefix(ref: str) -> bool:
	"""Whether `ref` may name a file by a prefix of its hash (6+ hex characters)."""
	return len(ref) >= MIN_HASH_PREFIX and all(char in '0123456789abcdefABCDEF' for char in ref)


def inside(root: Path, name: str, field: str = 'name') -> Path:
	"""`root / name` resolved (symlinks included); INVALID_ARGUMENT if it is absolute or escapes `root`."""
	root = root.resolve()
	refusal = InvalidArgumentError(
		[FieldViolation(field=field, description=f'{name!r} must name a path inside {root} (no "..", no links out)')]
	)
	if not name or '\0' in name or Path(name).is_absolute():
		raise refusal
	candidate = (root / name).resolve()
	if candidate == root or not candidate.is_relative_to(root):
		raise refusal
	return candidate


def _folder_stamp(root: Path, folder: Path) -> FileStamp:
	size, mtime = 0, folder.stat().st_mtime_ns
	for dirpath, _, files in os.walk(folder):
		for name in files:
			try:
				info = os.stat(os.path.join(dirpath, name))
			except OSError:  # a broken link or a loop inside: the probe tells what is missing
				continue
			size += info.st_size
			mtime = max(mtime, info.st_mtime_ns)
	return FileStamp(path=folder.relative_to(root).as_posix(), size_bytes=size, mtime_ns=mtime, folder=True)


def _shown(name: str) -> str:
	"""A file name as the catalog can store and send it: names that are not UTF-8 get their bytes escaped."""
	return name.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


def _unusable(rel: str, problem: str, folder: bool = False) -> FileStamp:
	return FileStamp(path=rel, size_bytes=0, mtime_ns=0, folder=folder, problem=problem)


def _entry(root: Path, entry: os.DirEntry[str], suffixes: frozenset[str], folders: bool) -> FileStamp | Path | None:
	"""What one directory entry is: a catalog entry, a folder to walk into, or nothing for the catalog."""
	path = Path(entry.path)
	rel = path.relative_to(root).as_posix()
	if _shown(rel) != rel:
		return (
			_unusable(_shown(rel), 'the file name is not valid UTF-8; rename it') if _wanted(path, suffixes) else None
		)
	try:
		if entry.is_symlink() and not path.resolve(strict=True).is_relative_to(root):
			return None  # links that lead outside the folder are never followed
		if entry.is_dir():
			if folders and (path / 'model_index.json').is_file():
				return _folder_stamp(root, path)
			return path
		if entry.is_file() and _wanted(path, suffixes):
			info = entry.stat()
			return FileStamp(path=rel, size_bytes=info.st_size, mtime_ns=info.st_mtime_ns, folder=False)
	except (OSError, RuntimeError) as exc:  # a symlink loop, a link to nothing, a file that vanished
		problem = getattr(exc, 'strerror', None) or str(exc)
		return _unusable(rel, f'the file cannot be opened: {problem}') if _wanted(path, suffixes) else None
	return None


def _wanted(path: Path, suffixes: frozenset[str]) -> bool:
	return path.suffix.lower() in suffixes


def walk(models_dir: Path, suffixes: frozenset[str] = CHECKPOINT_SUFFIXES, folders: bool = True) -> list[FileStamp]:
	"""Diffusers folders and checkpoint files under `models_dir` (recursively), skipping hidden names
	(temporary downloads) and links that lead outside the folder. An entry that cannot be read (a symlink
	loop, a name that is not UTF-8) is returned with its `problem`, so it is listed as invalid and the scan
	goes on."""
	if not models_dir.is_dir():
		return []
	root = models_dir.resolve()
	found: list[FileStamp] = []
	pending = [root]
	visited: set[tuple[int, int]] = set()
	while pending:
		folder = pending.pop()
		try:
			info = folder.stat()
			if (info.st_dev, info.st_ino) in visited:
				continue  # a link back to a folder already walked
			visited.add((info.st_dev, info.st_ino))
			entries = list(os.scandir(folder))
		except OSError:
			continue
		for entry in entries:
			if entry.name.startswith('.'):
				continue
			item = _entry(root, entry, suffixes, folders)
			if isinstance(item, Path):
				pending.append(item)
			elif item is not None:
				found.append(item)
	return sorted(found, key=lambda stamp: stamp.path)


def stamp_of(models_dir: Path, rel: str) -> FileStamp | None:
	path = models_dir / rel
	try:
		info = path.stat()
	except OSError:
		return None
	return FileStamp(path=rel, size_bytes=info.st_size, mtime_ns=info.st_mtime_ns, folder=path.is_dir())


class FileHashes(BaseModel):
	sha256: str  # the whole file
	addnet: str  # the tensor data after the safetensors header (A1111 / kohya "addnet" hash of LoRAs)


def lora_hashes(path: Path, data_offset: int) -> FileHashes:
	"""Both hashes in one read of the file."""
	whole, data = hashlib.sha256(), hashlib.sha256()
	with path.open('rb') as file:
		whole.update(file.read(data_offset))
		while chunk := file.read(HASH_CHUNK_BYTES):
			whole.update(chunk)
			data.update(chunk)
	return FileHashes(sha256=whole.hexdigest(), addnet=data.hexdigest())


def sha256_file(path: Path) -> str:
	with path.open('rb') as file:
		return hashlib.file_digest(file, 'sha256').hexdigest()
