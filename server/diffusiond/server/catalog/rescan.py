"""What a rescan found against what the store knows (pure): the diff, names for new entries, guarded probes."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Generic, Protocol, TypeVar

from diffusiond.server.catalog.asset_schemas import AssetProbe, UpscalerProbe
from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe
from diffusiond.server.catalog.probe import PICKLE_SUFFIXES
from diffusiond.server.catalog.schemas import FileStamp, ModelFormat, ModelStatus, Probe

log = logging.getLogger(__name__)


P = TypeVar('P', Probe, LoraProbe, AssetProbe, UpscalerProbe)


def guarded(probe: Callable[[], P], path: Path, kind: type[P], fallback: ModelFormat | LoraFormat) -> P:
	"""One file's probe; whatever a hostile file makes it raise lists that file as invalid, and the scan goes on."""
	try:
		return probe()
	except Exception as exc:
		log.warning('probing %s failed; listed as invalid', path, exc_info=exc)
		problem = f'cannot be read: {type(exc).__name__}: {str(exc)[:200]}'
		return kind.model_validate({'format': fallback, 'status': ModelStatus.INVALID, 'problem': problem})


def _name_for(stamp: FileStamp, taken: set[str]) -> str:
	"""The path without its suffix ('sd15/dreamshaper_8'), or with it where that name is taken; a diffusers
	component file ('sdxl-vae/diffusion_pytorch_model.safetensors') is named by its folder."""
	path = PurePosixPath(stamp.path)
	name = stamp.path if stamp.folder else str(path.with_suffix(''))
	if path.stem == 'diffusion_pytorch_model' and len(path.parts) > 1:  # a component saved by diffusers: its folder
		name = str(path.parent)
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
