"""The LoRA catalog: the loras folder as the store remembers it, kept in step by `refresh`."""

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.catalog.file_catalog import FileCatalog, Noun
from diffusiond.server.catalog.files import walk
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe, probe_lora_file
from diffusiond.server.catalog.lora_schemas import LoraChanges, LoraRecord
from diffusiond.server.catalog.rescan import guarded
from diffusiond.server.catalog.schemas import FileStamp, ModelBase, ModelInfo, ModelStatus, RefreshResult
from diffusiond.server.errors import (
	DiffusiondError,
	FieldViolation,
	InvalidArgumentError,
	LoraNotApplicableError,
	LoraNotFoundError,
)
from diffusiond.server.listing import Window, window
from diffusiond.server.schemas import LoraRequest, LoraSpec
from diffusiond.server.store.lora_repo import LoraRepository
from diffusiond.server.store.tables import LoraRow

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


LORAS = Noun(field='lora', one='LoRA', many='LoRAs')


class LoraQuery(BaseModel):
	"""ListLoras' filters: all must hold; `text` is looked for in names, trigger words and tags."""

	base: ModelBase | None = None
	enabled: bool | None = None
	tag: str = ''
	text: str = ''

	def matches(self, record: LoraRecord) -> bool:
		if self.enabled is not None and record.enabled != self.enabled:
			return False
		if self.tag and self.tag not in record.tags:
			return False
		text = self.text.lower()
		haystack = [record.name, record.display_name, record.probe.output_name, *record.trigger_words, *record.tags]
		return not text or any(text in value.lower() for value in haystack)


class LoraCatalog(FileCatalog[LoraRow, LoraRecord, LoraProbe, LoraChanges]):
	def __init__(self, repo: LoraRepository, loras_dir: Path, changed: asyncio.Event | None = None) -> None:
		super().__init__(repo, loras_dir, LORAS, changed)
		self.repo: LoraRepository = repo
		self.loras_dir = loras_dir
		self.listeners: list[Callable[[], None]] = []  # told after every change of the catalog (recommend/)

	def _changed(self) -> None:
		for listener in self.listeners:
			listener()

	async def refresh(self, restore: bool = False) -> RefreshResult:
		result = await super().refresh(restore)
		self._changed()
		return result

	async def update(self, ref: str, changes: LoraChanges) -> LoraRecord:
		record = await super().update(ref, changes)
		self._changed()
		return record

	async def delete(self, record: LoraRecord, delete_files: bool) -> None:
		await super().delete(record, delete_files)
		self._changed()

	def _walk(self) -> list[FileStamp]:
		return walk(self.loras_dir, LORA_SUFFIXES, False)

	def _probe(self, stamp: FileStamp) -> LoraProbe:
		if stamp.problem:
			return LoraProbe(format=LoraFormat.KOHYA, status=ModelStatus.INVALID, problem=stamp.problem)
		path = self.loras_dir / stamp.path
		return guarded(lambda: probe_lora_file(path), path, LoraProbe, LoraFormat.KOHYA)

	def _not_found(self, ref: str) -> DiffusiondError:
		return LoraNotFoundError(
			f'no LoRA has the id, name or hash {ref!r}; list them with `diffusionctl loras list` '
			f'(LoraService.ListLoras), or put the file into the loras folder {self.loras_dir}',
			metadata={'lora': ref},
		)

	def _hash_task(self, record: LoraRecord) -> HashTask | None:
		if record.probe.status is not ModelStatus.READY or record.addnet_hash:
			return None
		return HashTask(
			record_id=record.id,
			name=record.name,
			root=self.loras_dir,
			path=record.path,
			data_offset=record.probe.data_offset,
		)

	async def browse(self, query: LoraQuery, offset: int, limit: int) -> Window[LoraRecord]:
		await self.settled()
		return window(
			[record for record in await self.repo.of_base(query.base) if query.matches(record)], offset, limit
		)

	async def set_enabled(self, ref: str, enabled: bool) -> LoraRecord:
		"""BatchUpdateLoras' enable/disable: by an exact reference, without the rescan an unknown name triggers."""
		record = await self.get(ref, rescan=False)
		await self.repo.update(record.id, LoraChanges(enabled=enabled))
		self._changed()
		return record

	async def resolve(self, requests: list[LoraRequest], model: ModelInfo) -> list[ResolvedLora]:
		"""Each requested LoRA, checked to be usable with `model` (FAILED_PRECONDITION naming both bases)."""
		resolved: list[ResolvedLora] = []
		for request in requests:
			record = await self.get(request.ref)
			check_usable(record, model)
			twice = next((item for item in resolved if item.record.id == record.id), None)
			if twice is not None:
				both = twice.spec.in_prompt != request.in_prompt
				where = ' (in `loras` and as a <lora:…> tag in the prompt); name it one way' if both else ''
				raise InvalidArgumentError(
					[FieldViolation(field='loras', description=f'LoRA {record.name!r} is named twice{where}')]
				)
			weight = record.default_weight if request.weight is None else request.weight
			spec = LoraSpec(
				id=record.id,
				name=record.name,
				path=self.loras_dir / record.path,
				weight=weight,
				short_hash=record.short_hash,
				key=f'{record.id}:{record.size_bytes}:{record.mtime_ns}',
				in_prompt=request.in_prompt,
			)
			resolved.append(ResolvedLora(record=record, spec=spec))
		return resolved
