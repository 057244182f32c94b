"""One rescan of the models folder against the store: stat everything, probe only what is new or changed."""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Generic, Protocol, TypeVar

from diffusiond.server.catalog.files import walk
from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe
from diffusiond.server.catalog.probe import PICKLE_SUFFIXES, probe_file, probe_folder
from diffusiond.server.catalog.schemas import FileStamp, ModelFormat, ModelStatus, Probe, RefreshResult
from diffusiond.server.store import ModelRepository
from diffusiond.server.store.model_repo import NewModel, Reprobe

log = logging.getLogger(__name__)


def _probe(models_dir: Path, stamp: FileStamp) -> Probe:
	kind = ModelFormat.DIFFUSERS if stamp.folder else ModelFormat.SAFETENSORS
	if stamp.problem:
		return Probe(format=kind, status=ModelStatus.INVALID, problem=stamp.problem)
	path = models_dir / stamp.path
	return guarded(lambda: probe_folder(path) if stamp.folder else probe_file(path), path, Probe, kind)


P = TypeVar('P', Probe, LoraProbe)


def guarded(probe: Callable[[], P], path: Path, kind: type[P], fallback: ModelFormat | LoraFormat) -> P:
	"""One file's probe; whatever a hostile file makes it raise lists that file as invalid, and the scan goes on."""
	try:
		return probe()
	except Exception as exc:
		log.warning('probing %s failed; listed as invalid', path, exc_info=exc)
		problem = f'cannot be read: {type(exc).__name__}: {str(exc)[:200]}'
		return kind.model_validate({'format': fallback, 'status': ModelStatus.INVALID, 'problem': problem})


def _name_for(stamp: FileStamp, taken: set[str]) -> str:
	"""The path without its suffix ('sd15/dreamshaper_8'), or with it where that name is taken."""
	path = PurePosixPath(stamp.path)
	name = stamp.path if stamp.folder else str(path.with_suffix(''))
	return stamp.path if name in taken else name


def _safetensors_first(stamp: FileStamp) -> tuple[bool, str]:
	"""Where names clash ('x.safetensors' and 'x.ckpt'), the safe file gets the plain name."""
	return PurePosixPath(stamp.path).suffix.lower() in PICKLE_SUFFIXES, stamp.path


class Stamped(Protocol):
	@property
	def id(self) -> str: ...
	@property
	def name(self) -> str: ...
	@property
	def path(self) -> str: ...
	@property
	def size_bytes(self) -> int: ...
	@property
	def mtime_ns(self) -> int: ...


R = TypeVar('R', bound=Stamped)


@dataclass(frozen=True)
class ScanDiff(Generic[R]):
	"""What a scan found against what the store knows: new paths, changed files, vanished records."""

	new: list[FileStamp]
	changed: list[tuple[R, FileStamp]]
	gone: list[R]
	taken: set[str]  # names of the records that stay
	unchanged: int


def diff_stamps(stamps: list[FileStamp], known: list[R]) -> ScanDiff[R]:
	records = {record.path: record for record in known}
	seen = {stamp.path for stamp in stamps}
	changed = [
		(records[stamp.path], stamp)
		for stamp in stamps
		if stamp.path in records
		and (records[stamp.path].size_bytes, records[stamp.path].mtime_ns) != (stamp.size_bytes, stamp.mtime_ns)
	]
	new = [stamp for stamp in stamps if stamp.path not in records]
	return ScanDiff(
		new=new,
		changed=changed,
		gone=[record for path, record in records.items() if path not in seen],
		taken={record.name for record in records.values() if record.path in seen},
		unchanged=len(stamps) - len(new) - len(changed),
	)


def new_names(stamps: list[FileStamp], taken: set[str]) -> list[tuple[str, FileStamp]]:
	"""A unique name for each new entry, safetensors files first so they get the plain names."""
	named = []
	for stamp in sorted(stamps, key=_safetensors_first):
		name = _name_for(stamp, taken)
		taken.add(name)
		named.append((name, stamp))
	return named


async def rescan(repo: ModelRepository, models_dir: Path) -> RefreshResult:
	"""Walks and probes in threads (never on the loop); writes every change in one transaction."""
	begin = time.perf_counter()
	stamps = await asyncio.to_thread(walk, models_dir)
	diff = diff_stamps(stamps, await repo.all(include_hidden=True))
	todo = diff.new + [stamp for _, stamp in diff.changed]
	probes = await asyncio.to_thread(lambda: [_probe(models_dir, stamp) for stamp in todo])
	found = dict(zip((stamp.path for stamp in todo), probes, strict=True))
	now = datetime.now(UTC)
	added = [
		NewModel(id=uuid.uuid4().hex[:16], name=name, stamp=stamp, probe=found[stamp.path], added_at=now)
		for name, stamp in new_names(diff.new, diff.taken)
	]
	reprobed = [Reprobe(id=record.id, stamp=stamp, probe=found[stamp.path]) for record, stamp in diff.changed]
	await repo.apply_scan(added, reprobed, [record.id for record in diff.gone])
	return RefreshResult(
		stale_ids=[record.id for record in diff.gone] + [record.id for record, _ in diff.changed],
		added=len(diff.new),
		removed=len(diff.gone),
		changed=len(diff.changed),
		unchanged=diff.unchanged,
		elapsed_s=time.perf_counter() - begin,
	)
