"""The ControlNet catalog: the controlnets folder (A1111's original-layout files, diffusers folders named by their
folder) as the store remembers it, each checked to suit a job's model before the job is queued."""

import asyncio
from pathlib import Path

from diffusiond.server.catalog.asset_probe import (
	probe_controlnet_file,
)
from diffusiond.server.catalog.asset_rules import CONTROLNETS, AssetRules
from diffusiond.server.catalog.asset_schemas import AssetChanges, AssetProbe, AssetRecord
from diffusiond.server.catalog.file_catalog import FileCatalog
from diffusiond.server.catalog.rescan import guarded
from diffusiond.server.catalog.schemas import FileStamp, ModelFormat, ModelInfo, ModelStatus
from diffusiond.server.errors import (
	ControlNetNotFoundError,
	DiffusiondError,
)
from diffusiond.server.store.asset_repo import ControlNetRepository
from diffusiond.server.store.tables import ControlNetRow


class ControlNetCatalog(AssetRules, FileCatalog[ControlNetRow, AssetRecord, AssetProbe, AssetChanges]):
	"""The controlnets folder: diffusers ControlNets (config.json + weights, named by their folder)."""

	def __init__(self, repo: ControlNetRepository, folder: Path, changed: asyncio.Event | None = None) -> None:
		super().__init__(repo, folder, CONTROLNETS, changed)

	def _probe(self, stamp: FileStamp) -> AssetProbe:
		if stamp.problem:
			return AssetProbe(status=ModelStatus.INVALID, problem=stamp.problem)
		path = self.folder / stamp.path
		return guarded(lambda: probe_controlnet_file(path), path, AssetProbe, ModelFormat.SAFETENSORS)

	def _not_found(self, ref: str) -> DiffusiondError:
		return ControlNetNotFoundError(
			f'no ControlNet has the id, name or hash {ref!r}{self.hash_hint(ref)}; list them with `diffusionctl '
			f'controlnets` (AssetService.ListControlNets), or put its diffusers folder into {self.folder}',
			metadata={'controlnet': ref},
		)

	async def resolve(self, ref: str, model: ModelInfo) -> AssetRecord:
		record = await self.get(ref)
		self.check_usable(record, model)
		return record
