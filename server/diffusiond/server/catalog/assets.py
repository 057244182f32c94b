"""The embeddings and VAE catalogs: the `embeddings/` and `vaes/` folders (A1111's `embeddings` and `models/VAE`)
as the store remembers them, kept in step by `refresh` like the model and LoRA catalogs.

Which one a request uses, and whether it suits the model, is decided here, before the job is queued: a file that
is unreadable, a pickle while pickles are off, or one made for another base is refused with FAILED_PRECONDITION.
An allowed pickle is opened once, on the worker (the engine), with weights_only=True; scans never unpickle.
"""

import asyncio
from pathlib import Path

from diffusiond.server.catalog.asset_rules import (
	EMBEDDINGS,
	LATENT_CHANNELS,
	VAES,
	AssetRules,
	PickleShapes,
	no_pickles,
)
from diffusiond.server.catalog.asset_schemas import AssetChanges, AssetProbe, AssetRecord
from diffusiond.server.catalog.file_catalog import FileCatalog
from diffusiond.server.catalog.schemas import ModelBase, ModelInfo
from diffusiond.server.errors import (
	DiffusiondError,
	EmbeddingNotFoundError,
	VaeNotFoundError,
)
from diffusiond.server.store.asset_repo import EmbeddingRepository, VaeRepository
from diffusiond.server.store.file_repo import Reprobe
from diffusiond.server.store.tables import EmbeddingRow, VaeRow


class EmbeddingCatalog(AssetRules, FileCatalog[EmbeddingRow, AssetRecord, AssetProbe, AssetChanges]):
	def __init__(
		self,
		repo: EmbeddingRepository,
		folder: Path,
		allow_pickle: bool = False,
		open_pickle: PickleShapes | None = None,
		changed: asyncio.Event | None = None,
	) -> None:
		super().__init__(repo, folder, EMBEDDINGS, changed)
		self.allow_pickle = allow_pickle
		self._open_pickle = open_pickle or no_pickles

	async def _store_probe(self, record: AssetRecord, probe: AssetProbe) -> None:
		await self.repo.apply_scan([], [Reprobe[AssetProbe](id=record.id, stamp=record.stamp(), probe=probe)], [])

	def _not_found(self, ref: str) -> DiffusiondError:
		return EmbeddingNotFoundError(
			f'no embedding has the id, name or hash {ref!r}{self.hash_hint(ref)}; list them with `diffusionctl '
			f'embeddings` (AssetService.ListEmbeddings), or put the file into the embeddings folder {self.folder}',
			metadata={'embedding': ref},
		)

	async def named(self) -> list[AssetRecord]:
		"""Every listed embedding: the words a prompt may name (the usable ones and those to refuse)."""
		return await self.entries()


class VaeCatalog(AssetRules, FileCatalog[VaeRow, AssetRecord, AssetProbe, AssetChanges]):
	vae = True

	def __init__(
		self,
		repo: VaeRepository,
		folder: Path,
		allow_pickle: bool = False,
		open_pickle: PickleShapes | None = None,
		changed: asyncio.Event | None = None,
	) -> None:
		super().__init__(repo, folder, VAES, changed)
		self.allow_pickle = allow_pickle
		self._open_pickle = open_pickle or no_pickles

	async def _store_probe(self, record: AssetRecord, probe: AssetProbe) -> None:
		await self.repo.apply_scan([], [Reprobe[AssetProbe](id=record.id, stamp=record.stamp(), probe=probe)], [])

	def _not_found(self, ref: str) -> DiffusiondError:
		return VaeNotFoundError(
			f'no VAE has the id, name or hash {ref!r}{self.hash_hint(ref)}; list them with `diffusionctl vaes` '
			f'(AssetService.ListVaes), or put the file into the vaes folder {self.folder}',
			metadata={'vae': ref},
		)

	def _mismatch(self, probe: AssetProbe, model: ModelInfo) -> bool:
		known = ModelBase.UNKNOWN not in (probe.base, model.base)
		return probe.width != LATENT_CHANNELS or (known and probe.base is not model.base)

	async def resolve(self, ref: str, model: ModelInfo) -> AssetRecord:
		"""The VAE `ref` names, checked to suit `model`."""
		record = await self.opened(await self.get(ref))
		self.check_usable(record, model)
		return record
