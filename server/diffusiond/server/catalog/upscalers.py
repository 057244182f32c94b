"""The upscaler catalog: the upscalers folder (ESRGAN, Real-ESRGAN, SwinIR… files as people download them), each
file read once by spandrel (through the engine: it needs torch) for its architecture and scale, the store keeping
what it found until the file changes."""

import asyncio
from collections.abc import Callable
from pathlib import Path

from diffusiond.server.catalog.asset_rules import SUFFIXES
from diffusiond.server.catalog.asset_schemas import AssetChanges, UpscalerProbe, UpscalerRecord
from diffusiond.server.catalog.file_catalog import FileCatalog, Noun
from diffusiond.server.catalog.files import walk
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.rescan import guarded
from diffusiond.server.catalog.schemas import FileStamp, ModelFormat, ModelStatus
from diffusiond.server.errors import AssetNotApplicableError, DiffusiondError, UpscalerNotFoundError
from diffusiond.server.store.asset_repo import UpscalerRepository
from diffusiond.server.store.tables import UpscalerRow
from diffusiond.server.tasks.upscale import BUILTIN_UPSCALERS
from diffusiond.server.tasks.upscaler_file import UpscalerFile

UPSCALERS = Noun(field='upscaler', one='upscaler', many='upscalers')
UPSCALER_HASH_LENGTH = 10
Describe = Callable[[Path], UpscalerProbe]  # what spandrel makes of a file (blocking; the engine's)


class UpscalerCatalog(FileCatalog[UpscalerRow, UpscalerRecord, UpscalerProbe, AssetChanges]):
	def __init__(
		self, repo: UpscalerRepository, folder: Path, describe: Describe, changed: asyncio.Event | None = None
	) -> None:
		super().__init__(repo, folder, UPSCALERS, changed)
		self._describe = describe

	def _walk(self) -> list[FileStamp]:
		return walk(self.folder, SUFFIXES, False)

	def _probe(self, stamp: FileStamp) -> UpscalerProbe:
		if stamp.problem:
			return UpscalerProbe(status=ModelStatus.INVALID, problem=stamp.problem)
		path = self.folder / stamp.path
		return guarded(lambda: self._describe(path), path, UpscalerProbe, ModelFormat.SAFETENSORS)

	def _hash_task(self, record: UpscalerRecord) -> HashTask | None:
		if record.sha256 or record.probe.status is ModelStatus.INVALID:
			return None
		return HashTask(record_id=record.id, name=record.name, root=self.folder, path=record.path)

	def _not_found(self, ref: str) -> DiffusiondError:
		builtin = ', '.join(repr(name) for name in BUILTIN_UPSCALERS)
		return UpscalerNotFoundError(
			f'no upscaler has the id, name or hash {ref!r}{self.hash_hint(ref)}; list them with `diffusionctl '
			f'upscalers` (AssetService.ListUpscalers), put its file into {self.folder}, or use a built-in one '
			f'({builtin})',
			metadata={'upscaler': ref},
		)

	async def resolve(self, ref: str) -> UpscalerFile:
		"""The upscaler `ref` names, checked to be usable (FAILED_PRECONDITION saying why not)."""
		record = await self.get(ref)
		probe, meta = record.probe, {'upscaler': record.name}
		if probe.status is ModelStatus.UNSAFE:
			raise AssetNotApplicableError(
				f'upscaler {record.name!r} is a pickle file, which can run code when loaded; use its .safetensors '
				'version, or set DIFFUSIOND_MODELS__ALLOW_PICKLE=true to load it with weights_only=True',
				metadata=meta,
			)
		if probe.status is not ModelStatus.READY:
			raise AssetNotApplicableError(f'upscaler {record.name!r} cannot be used: {probe.problem}', metadata=meta)
		return UpscalerFile(
			id=record.id,
			name=record.name,
			path=str(self.folder / record.path),
			key=record.key,
			scale=probe.scale,
			architecture=probe.architecture,
			pickle=probe.pickle,
		)
