"""The model catalog: the models folder as the store remembers it, kept in step by `refresh`."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from huggingface_hub import constants

from diffusiond.server.catalog.configs import locate_configs, missing_config_hint, model_info
from diffusiond.server.catalog.files import MIN_HASH_PREFIX, FileHashes, is_hash_prefix
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.rescan import rescan
from diffusiond.server.catalog.schemas import (
	FileStamp,
	ModelChanges,
	ModelFormat,
	ModelInfo,
	ModelRecord,
	ModelStatus,
	Probe,
	RefreshResult,
)
from diffusiond.server.errors import (
	DiffusiondError,
	FieldViolation,
	InvalidArgumentError,
	ModelLoadError,
	ModelNotFoundError,
	ModelUnsafeError,
)
from diffusiond.server.store import ModelRepository

log = logging.getLogger(__name__)
FIND_HINT = 'list models with `diffusionctl models list` (ModelService.ListModels), or put one into the models folder'


PickleProbe = Callable[[Path], Awaitable[Probe]]


async def _no_pickles(path: Path) -> Probe:
	return Probe(format=ModelFormat.PICKLE, status=ModelStatus.UNSAFE, problem='no engine to open pickles')


class Catalog:
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
		self.repo = repo
		self.hub_cache = hub_cache or Path(constants.HF_HUB_CACHE)
		self.allow_pickle = allow_pickle
		self.models_dir = models_dir
		self.configs_dir = configs_dir
		self.default_ref = default_ref
		self.changed = changed or asyncio.Event()  # set by a rescan that found new or changed files (wakes the hasher)
		self._lock = asyncio.Lock()
		self._open_pickle = open_pickle or _no_pickles  # torch.load on the worker (the engine), never here
		self.default_id: str | None = None  # the default start-up settled on
		self.unloadable: dict[str, str] = {}  # model id → why its load failed

	async def refresh(self) -> RefreshResult:
		"""Rescans the models folder; probes only new or changed entries (off the event loop)."""
		async with self._lock:
			result = await rescan(self.repo, self.models_dir)
		for stale in result.stale_ids:  # a changed file may load now
			self.unloadable.pop(stale, None)
		if result.added or result.changed:
			self.changed.set()
		if result.added or result.removed or result.changed:
			log.info('models folder rescanned: %s', result.model_dump_json())
		return result

	async def pending_hashes(self) -> list[HashTask]:
		"""Checkpoint files without a current sha256 (folders have none)."""
		return [
			HashTask(record_id=record.id, name=record.name, root=self.models_dir, path=record.path)
			for record in await self.repo.all()
			if record.format is not ModelFormat.DIFFUSERS
			and record.status is not ModelStatus.INVALID
			and not record.sha256
		]

	async def store_hashes(self, task: HashTask, hashes: FileHashes, stamp: FileStamp) -> None:
		await self.repo.set_hash(task.record_id, hashes.sha256, stamp.size_bytes, stamp.mtime_ns)

	async def by_path(self, rel: str) -> ModelRecord | None:
		return next((record for record in await self.repo.all() if record.path == rel), None)

	async def get(self, ref: str, rescan: bool = True) -> ModelRecord:
		"""By id, name, or sha256 prefix (AutoV2 hashes are 10 characters); an unknown name triggers one rescan."""
		if not ref:
			raise InvalidArgumentError([FieldViolation(field='model', description='give a model id, name or hash')])
		hashlike = is_hash_prefix(ref)
		found = await self.repo.find(ref, hashlike)
		if not found and rescan:  # a file dropped into the models folder since the last scan
			await self.refresh()
			found = await self.repo.find(ref, hashlike)
		if len(found) == 1:
			return found[0]
		if len(found) > 1:
			names = ', '.join(sorted(record.name for record in found))
			raise InvalidArgumentError(
				[
					FieldViolation(
						field='model', description=f'{ref!r} matches several models ({names}); be more specific'
					)
				]
			)
		hint = f' (hash prefixes need at least {MIN_HASH_PREFIX} characters)' if len(ref) < MIN_HASH_PREFIX else ''
		raise ModelNotFoundError(
			f'no model has the id, name or hash {ref!r}{hint}; {FIND_HINT} {self.models_dir}', metadata={'model': ref}
		)

	async def candidates(self) -> list[ModelRecord]:
		"""Models that may serve a plain Generate, best first: the configured default, then ready real models by
		name, then the demo model; models whose load failed are left out."""
		ready = [
			record
			for record in await self.repo.all()
			if record.status is ModelStatus.READY and record.id not in self.unloadable
		]
		ranked = [record for record in ready if not record.demo and not record.inpainting]
		ranked += [record for record in ready if record.demo and not record.inpainting]
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

	async def loadable(self, ref: str, unmasked_job: bool = False) -> ModelInfo:
		"""The model `ref` names, checked to be loadable (FAILED_PRECONDITION with the cause if not).

		`unmasked_job`: for a txt2img or img2img job, which an inpainting model (9 input channels) cannot run."""
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

	async def update(self, ref: str, changes: ModelChanges) -> ModelRecord:
		record = await self.get(ref)
		await self.repo.update(record.id, changes)
		return await self.get(record.id)

	async def unregister(self, record: ModelRecord, files_removed: bool) -> None:
		"""Forgets `record`; with its files kept, later rescans skip it until the file changes."""
		if files_removed:
			await self.repo.remove([record.id])
		else:
			await self.repo.hide(record.id)

	async def mark_used(self, record_id: str) -> None:
		await self.repo.touch(record_id, datetime.now(UTC))
