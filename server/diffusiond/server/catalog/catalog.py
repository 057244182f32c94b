"""The model catalog: the models folder as the store remembers it, kept in step by `refresh`."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from huggingface_hub import constants
from pydantic import BaseModel

from diffusiond.server.catalog.configs import locate_configs, missing_config_hint, model_info
from diffusiond.server.catalog.file_catalog import FileCatalog, Noun
from diffusiond.server.catalog.files import walk
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.probe import probe_file, probe_folder
from diffusiond.server.catalog.rescan import guarded
from diffusiond.server.catalog.schemas import (
	FileStamp,
	ModelBase,
	ModelChanges,
	ModelFormat,
	ModelInfo,
	ModelRecord,
	ModelStatus,
	Probe,
	RefreshResult,
	is_refiner,
)
from diffusiond.server.errors import (
	DiffusiondError,
	ModelLoadError,
	ModelNotFoundError,
	ModelUnsafeError,
)
from diffusiond.server.listing import Window
from diffusiond.server.store import ModelRepository
from diffusiond.server.store.tables import ModelRow

log = logging.getLogger(__name__)
FIND_HINT = 'list models with `diffusionctl models list` (ModelService.ListModels), or put one into the models folder'


class ModelQuery(BaseModel):
	"""ListModels' filters and order."""

	base: ModelBase | None = None
	format: ModelFormat | None = None
	ids: list[str] | None = None  # only these (the loaded ones)
	order: Literal['name', 'last_used'] = 'name'


MODELS = Noun(field='model', one='model', many='models')
PickleProbe = Callable[[Path], Awaitable[Probe]]


async def _no_pickles(path: Path) -> Probe:
	return Probe(format=ModelFormat.PICKLE, status=ModelStatus.UNSAFE, problem='no engine to open pickles')


class Catalog(FileCatalog[ModelRow, ModelRecord, Probe, ModelChanges]):
	def __init__(
		self,
		repo: ModelRepository,
		models_dir: Path,
		configs_dir: Path,
		default_ref: str,
		allow_pickle: bool,
		hub_cache: Path | None = None,
		changed: asyncio.Event | None = None,
		open_pickle: PickleProbe | None = None,
	) -> None:
		super().__init__(repo, models_dir, MODELS, changed)
		self.repo: ModelRepository = repo
		self.hub_cache = hub_cache or Path(constants.HF_HUB_CACHE)
		self.allow_pickle = allow_pickle
		self.models_dir = models_dir
		self.configs_dir = configs_dir
		self.default_ref = default_ref
		self._open_pickle = open_pickle or _no_pickles  # torch.load on the worker (the engine), never here
		self.default_id: str | None = None  # the default start-up settled on
		self.unloadable: dict[str, str] = {}  # model id → why its load failed

	def _walk(self) -> list[FileStamp]:
		return walk(self.models_dir)

	def _probe(self, stamp: FileStamp) -> Probe:
		kind = ModelFormat.DIFFUSERS if stamp.folder else ModelFormat.SAFETENSORS
		if stamp.problem:
			return Probe(format=kind, status=ModelStatus.INVALID, problem=stamp.problem)
		path = self.models_dir / stamp.path
		return guarded(lambda: probe_folder(path) if stamp.folder else probe_file(path), path, Probe, kind)

	def _refreshed(self, result: RefreshResult) -> None:
		for stale in result.stale_ids:  # a changed file may load now
			self.unloadable.pop(stale, None)

	def _not_found(self, ref: str) -> DiffusiondError:
		return ModelNotFoundError(
			f'no model has the id, name or hash {ref!r}{self.hash_hint(ref)}; {FIND_HINT} {self.models_dir}',
			metadata={'model': ref},
		)

	def _hash_task(self, record: ModelRecord) -> HashTask | None:
		"""Checkpoint files without a current sha256 (folders have none)."""
		if record.format is ModelFormat.DIFFUSERS or record.status is ModelStatus.INVALID or record.sha256:
			return None
		return HashTask(record_id=record.id, name=record.name, root=self.models_dir, path=record.path)

	async def browse(self, query: ModelQuery, offset: int, limit: int) -> Window[ModelRecord]:
		"""One window of matching models, as clients see them (`describe`)."""
		await self.settled()
		records, total = await self.repo.query(
			base=query.base, format=query.format, ids=query.ids, order=query.order, offset=offset, limit=limit
		)
		return Window[ModelRecord](items=await self.describe(records), offset=offset, total=total)

	async def candidates(self) -> list[ModelRecord]:
		"""Models that may serve a plain Generate, best first: the configured default, then ready real models by
		name, then the demo model; inpainting models and SDXL refiners (they cannot start from noise) and models
		whose load failed are left out."""
		ready = [
			record
			for record in await self.repo.all()
			if record.status is ModelStatus.READY and record.id not in self.unloadable
		]
		plain = [record for record in ready if not record.inpainting and not is_refiner(record.base, record.arch)]
		ranked = [record for record in plain if not record.demo] + [record for record in plain if record.demo]
		if self.default_ref:
			try:
				configured = await self.get(self.default_ref)
			except DiffusiondError as error:
				log.error('the configured default model %r: %s', self.default_ref, error.message)
			else:
				ranked = [configured, *(record for record in ranked if record.id != configured.id)]
		return ranked

	async def default(self) -> ModelRecord | None:
		"""The model a plain Generate uses: the one start-up settled on, else the first candidate that can load."""
		candidates = await self.candidates()
		chosen = next((record for record in candidates if record.id == self.default_id), None)
		if chosen is not None:
			return chosen
		for record in candidates:
			try:
				await self.loadable(record.id)
			except DiffusiondError:
				continue
			return record
		return None

	async def describe(self, records: list[ModelRecord]) -> list[ModelRecord]:
		"""The records as clients see them: a ready model that cannot load now (no configs for a single file, or
		a failed load) shows as UNLOADABLE with the reason, so nobody mistakes it for one that works."""
		described = []
		for record in records:
			why = self.unloadable.get(record.id)
			if why is None and record.status is ModelStatus.READY and record.format is not ModelFormat.DIFFUSERS:
				info = await self.info(record)
				why = missing_config_hint(self.configs_dir, record) if info.config_dir is None else None
			if why is not None and record.status is ModelStatus.READY:
				record = record.model_copy(update={'status': ModelStatus.UNLOADABLE, 'problem': why})
			described.append(record)
		return described

	def mark_unloadable(self, record_id: str, why: str) -> None:
		"""A model whose load failed is no default candidate until the daemon restarts or its file changes."""
		self.unloadable[record_id] = why
		if self.default_id == record_id:
			self.default_id = None

	async def resolve(self, ref: str) -> ModelRecord:
		"""The model a request names ('' = the default model)."""
		if ref:
			return await self.get(ref)
		record = await self.default()
		if record is not None:
			return record
		if self.unloadable:
			failed = '; '.join(list(self.unloadable.values())[:3])
			raise ModelNotFoundError(f'no installed model loads, so there is no default ({failed}); name a model')
		raise ModelNotFoundError(
			f'no model is installed; put a diffusers folder or a .safetensors file into {self.models_dir}'
		)

	async def info(self, record: ModelRecord) -> ModelInfo:
		"""What the pipeline needs to load `record`: for a single file, the folder its configs come from."""
		if record.format is ModelFormat.DIFFUSERS:
			return model_info(record, self.models_dir, None, record.native_size)
		config_dir, native = await locate_configs(
			record, await self.repo.all(), self.models_dir, self.configs_dir, self.hub_cache
		)
		return model_info(record, self.models_dir, config_dir, native)

	async def loadable(self, ref: str, unmasked_job: bool = False, from_noise: bool = False) -> ModelInfo:
		"""The model `ref` names, checked to be loadable (FAILED_PRECONDITION with the cause if not).

		`unmasked_job`: for a txt2img or img2img job, which an inpainting model (9 input channels) cannot run;
		`from_noise`: for a txt2img job, which an SDXL refiner cannot start."""
		record = await self.resolve(ref)
		meta = {'model': record.name}
		if record.status is ModelStatus.INVALID:
			raise ModelLoadError(f'model {record.name!r} cannot be loaded: {record.problem}', metadata=meta)
		if record.status is ModelStatus.UNSAFE and not self.allow_pickle:
			raise ModelUnsafeError(
				f'model {record.name!r} is a pickle checkpoint, which can run code when loaded; convert it to '
				'.safetensors, or set DIFFUSIOND_MODELS__ALLOW_PICKLE=true to load it with weights_only=True',
				metadata=meta,
			)
		if record.format is ModelFormat.PICKLE and not record.arch.in_channels:
			record = await self._probe_pickle(record)
		if record.inpainting and unmasked_job:
			raise ModelLoadError(
				f'model {record.name!r} is an inpainting model (9 input channels): it only inpaints; send '
				'init_image and mask_image, or choose another model',
				metadata=meta,
			)
		if from_noise and is_refiner(record.base, record.arch):
			raise ModelLoadError(
				f'model {record.name!r} is an SDXL refiner: it refines images and cannot start one from noise; send '
				'init_image (img2img), or generate with an SDXL base model',
				metadata=meta,
			)
		info = await self.info(record)
		if record.format is not ModelFormat.DIFFUSERS and info.config_dir is None:
			raise ModelLoadError(missing_config_hint(self.configs_dir, record), metadata=meta)
		return info

	async def _probe_pickle(self, record: ModelRecord) -> ModelRecord:
		"""An allowed pickle is probed on first use (scans never unpickle); the result is stored."""
		probe = await self._open_pickle(self.models_dir / record.path)
		await self.repo.reprobe(record.id, record.stamp(), probe)
		record = await self.get(record.id)
		if record.status is ModelStatus.INVALID:
			raise ModelLoadError(
				f'model {record.name!r} cannot be loaded: {record.problem}', metadata={'model': record.name}
			)
		return record
