"""The LoRA catalog: the loras folder as the store remembers it, kept in step by `refresh`."""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.catalog.files import FileHashes, is_hash_prefix, walk
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe, probe_lora_file
from diffusiond.server.catalog.lora_schemas import LoraChanges, LoraRecord
from diffusiond.server.catalog.rescan import diff_stamps, guarded, new_names
from diffusiond.server.catalog.schemas import FileStamp, ModelBase, ModelInfo, ModelStatus, RefreshResult
from diffusiond.server.errors import FieldViolation, InvalidArgumentError, LoraNotApplicableError, LoraNotFoundError
from diffusiond.server.schemas import LoraRequest, LoraSpec
from diffusiond.server.store.lora_repo import LoraRepository, LoraReprobe, NewLora

log = logging.getLogger(__name__)
LORA_SUFFIXES = frozenset({'.safetensors', '.pt', '.ckpt', '.bin'})


class ResolvedLora(BaseModel):
	record: LoraRecord
	spec: LoraSpec


def check_usable(record: LoraRecord, model: ModelInfo) -> None:
	probe, meta = record.probe, {'lora': record.name, 'model': model.name}
	if not record.enabled:
		raise LoraNotApplicableError(f'LoRA {record.name!r} is disabled; enable it with UpdateLora', metadata=meta)
	if probe.status is not ModelStatus.READY:
		raise LoraNotApplicableError(f'LoRA {record.name!r} cannot be used: {probe.problem}', metadata=meta)
	known = ModelBase.UNKNOWN not in (probe.base, model.base)
	widths = probe.cross_attention_dim and model.arch.cross_attention_dim
	if (known and probe.base is not model.base) or (
		widths and probe.cross_attention_dim != model.arch.cross_attention_dim
	):
		raise LoraNotApplicableError(
			f'LoRA {record.name!r} was made for {_family(probe.base, probe.cross_attention_dim)} but model '
			f'{model.name!r} is {_family(model.base, model.arch.cross_attention_dim)}; pick a LoRA for that base',
			metadata=meta,
		)


def _family(base: ModelBase, width: int) -> str:
	return base.name if base is not ModelBase.UNKNOWN else f'an unknown base (cross-attention width {width or "?"})'


def with_trigger_words(prompt: str, loras: list[ResolvedLora]) -> str:
	"""The prompt followed by the LoRAs' trigger words that it does not contain yet."""
	words: list[str] = []
	lowered = prompt.lower()
	for item in loras:
		for word in item.record.trigger_words:
			if word.lower() not in lowered and word not in words:
				words.append(word)
	return ', '.join([prompt, *words]) if prompt and words else prompt or ', '.join(words)


class LoraCatalog:
	def __init__(self, repo: LoraRepository, loras_dir: Path, changed: asyncio.Event | None = None) -> None:
		self.repo = repo
		self.loras_dir = loras_dir
		self.changed = changed or asyncio.Event()  # wakes the hasher
		self._lock = asyncio.Lock()

	async def refresh(self) -> RefreshResult:
		"""Rescans the loras folder; probes only new or changed files (headers only, in a thread)."""
		async with self._lock:
			begin = time.perf_counter()
			stamps = await asyncio.to_thread(walk, self.loras_dir, LORA_SUFFIXES, False)
			diff = diff_stamps(stamps, await self.repo.all(include_hidden=True))
			todo = diff.new + [stamp for _, stamp in diff.changed]
			probes = await asyncio.to_thread(lambda: [self._probe(stamp) for stamp in todo])
			found = dict(zip((stamp.path for stamp in todo), probes, strict=True))
			now = datetime.now(UTC)
			added = [
				NewLora(id=uuid.uuid4().hex[:16], name=name, stamp=stamp, probe=found[stamp.path], added_at=now)
				for name, stamp in new_names(diff.new, diff.taken)
			]
			changed = [
				LoraReprobe(id=record.id, stamp=stamp, probe=found[stamp.path]) for record, stamp in diff.changed
			]
			await self.repo.apply_scan(added, changed, [record.id for record in diff.gone])
			result = RefreshResult(
				stale_ids=[record.id for record in diff.gone] + [record.id for record, _ in diff.changed],
				added=len(added),
				removed=len(diff.gone),
				changed=len(changed),
				unchanged=diff.unchanged,
				elapsed_s=time.perf_counter() - begin,
			)
		if todo:
			self.changed.set()
			log.info('loras folder rescanned: %s', result.model_dump_json(exclude={'stale_ids'}))
		return result

	def _probe(self, stamp: FileStamp) -> LoraProbe:
		if stamp.problem:
			return LoraProbe(format=LoraFormat.KOHYA, status=ModelStatus.INVALID, problem=stamp.problem)
		path = self.loras_dir / stamp.path
		return guarded(lambda: probe_lora_file(path), path, LoraProbe, LoraFormat.KOHYA)

	async def get(self, ref: str, rescan: bool = True) -> LoraRecord:
		"""By id, name, or a prefix (6+ hex) of the addnet hash (A1111's 12-character one) or the sha256."""
		if not ref:
			raise InvalidArgumentError([FieldViolation(field='lora', description='give a LoRA id, name or hash')])
		hashlike = is_hash_prefix(ref)
		found = await self.repo.find(ref, hashlike)
		if not found and rescan:
			await self.refresh()
			found = await self.repo.find(ref, hashlike)
		if len(found) > 1:
			names = ', '.join(sorted(record.name for record in found))
			raise InvalidArgumentError(
				[FieldViolation(field='lora', description=f'{ref!r} matches several LoRAs ({names}); be more specific')]
			)
		if not found:
			raise LoraNotFoundError(
				f'no LoRA has the id, name or hash {ref!r}; list them with `diffusionctl loras list` '
				f'(LoraService.ListLoras), or put the file into the loras folder {self.loras_dir}',
				metadata={'lora': ref},
			)
		return found[0]

	async def resolve(self, requests: list[LoraRequest], model: ModelInfo) -> list[ResolvedLora]:
		"""Each requested LoRA, checked to be usable with `model` (FAILED_PRECONDITION naming both bases)."""
		resolved: list[ResolvedLora] = []
		for request in requests:
			record = await self.get(request.ref)
			check_usable(record, model)
			if any(item.record.id == record.id for item in resolved):
				raise InvalidArgumentError(
					[FieldViolation(field='loras', description=f'LoRA {record.name!r} is named twice')]
				)
			weight = record.default_weight if request.weight is None else request.weight
			spec = LoraSpec(
				id=record.id,
				name=record.name,
				path=self.loras_dir / record.path,
				weight=weight,
				short_hash=record.short_hash,
				key=f'{record.id}:{record.size_bytes}:{record.mtime_ns}',
			)
			resolved.append(ResolvedLora(record=record, spec=spec))
		return resolved

	async def update(self, ref: str, changes: LoraChanges) -> LoraRecord:
		record = await self.get(ref)
		await self.repo.update(record.id, changes)
		return await self.get(record.id)

	async def unregister(self, record: LoraRecord, files_removed: bool) -> None:
		if files_removed:
			await self.repo.remove([record.id])
		else:
			await self.repo.hide(record.id)

	async def mark_used(self, lora_ids: list[str]) -> None:
		if lora_ids:
			await self.repo.touch(lora_ids, datetime.now(UTC))

	async def pending_hashes(self) -> list[HashTask]:
		return [
			HashTask(
				record_id=record.id,
				name=record.name,
				root=self.loras_dir,
				path=record.path,
				data_offset=record.probe.data_offset,
			)
			for record in await self.repo.all()
			if record.probe.status is ModelStatus.READY and not record.addnet_hash
		]

	async def store_hashes(self, task: HashTask, hashes: FileHashes, stamp: FileStamp) -> None:
		await self.repo.set_hashes(task.record_id, hashes.sha256, hashes.addnet, stamp)
