"""Mapping between the history tables and GenerationRecords, and the SQL of the listing filters."""

import json
import math

from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy import ColumnElement, Text, cast, func, or_

from diffusiond.server.records import GenerationRecord, HistoryFilter, StoredImage
from diffusiond.server.samplers import Sampler
from diffusiond.server.schemas import ImageFormat, JobSpec, JobState
from diffusiond.server.store.lenient import INT64, RowReader
from diffusiond.server.store.like import LIKE_ESCAPE, contains
from diffusiond.server.store.rows import MAX_SIDE
from diffusiond.server.store.tables import GenerationImageRow, GenerationRow
from diffusiond.server.tasks import Task, Txt2Img
from diffusiond.server.tasks.legacy import upgrade_spec


def _document(text: object) -> dict[str, object]:
	try:
		value = from_json(text) if isinstance(text, str | bytes) else None
	except ValueError:
		value = None
	return {str(key): item for key, item in value.items()} if isinstance(value, dict) else {}


def _spec(read: RowReader, row: GenerationRow) -> JobSpec:
	"""The stored job spec, every number checked; a spec that is no JobSpec at all keeps the row's prompts."""
	try:
		spec = JobSpec.model_validate(upgrade_spec(_document(row.spec)))
	except ValidationError:
		read.damaged.append('spec')
		spec = JobSpec(
			model=read.text('model_name', row.model_name),
			prompt=read.text('prompt', row.prompt),
			negative_prompt=read.text('negative_prompt', row.negative_prompt),
			width=0,
			height=0,
			steps=0,
			guidance_scale=0.0,
			sampler=Sampler.UNSPECIFIED,
			seeds=[],
			output_format=ImageFormat.PNG,
			quality=90,
			task=Txt2Img(),
		)
	seeds = [seed for seed in spec.seeds if 0 <= seed <= INT64]
	if len(seeds) != len(spec.seeds):
		read.damaged.append('spec.seeds')
	loras = [
		lora.model_copy(update={'weight': read.number('spec.loras.weight', lora.weight, 0, 1000, 0.0)})
		for lora in spec.loras
	]
	return spec.model_copy(
		update={
			'width': read.integer('spec.width', spec.width, 0, MAX_SIDE, 0),
			'height': read.integer('spec.height', spec.height, 0, MAX_SIDE, 0),
			'steps': read.integer('spec.steps', spec.steps, 0, 1_000_000, 0),
			'guidance_scale': read.number('spec.guidance_scale', spec.guidance_scale, -1e6, 1e6, 0.0),
			'seeds': seeds,
			'quality': read.integer('spec.quality', spec.quality, 1, 100, 90),
			'task': _task(read, spec),
			'loras': loras,
		}
	)


def _task(read: RowReader, spec: JobSpec) -> Task:
	repaired = spec.task.repaired()
	if repaired != spec.task:
		read.damaged.append('spec.task')
	return repaired


def _timings(read: RowReader, value: object) -> dict[str, float]:
	if not isinstance(value, dict):
		read.damaged.append('timings')
		return {}
	return {
		str(key): float(number)
		for key, number in value.items()
		if isinstance(number, int | float) and math.isfinite(number) and not isinstance(number, bool)
	}


def _image(read: RowReader, image: GenerationImageRow) -> StoredImage:
	return StoredImage(
		index=read.integer('image.index', image.index, 0, 1_000_000, 0),
		seed=read.integer('image.seed', image.seed, 0, INT64, 0),
		path=read.text('image.path', image.path),
		mime_type=read.text('image.mime_type', image.mime_type, 'application/octet-stream'),
		width=read.integer('image.width', image.width, 0, MAX_SIDE, 0),
		height=read.integer('image.height', image.height, 0, MAX_SIDE, 0),
		size_bytes=read.integer('image.size_bytes', image.size_bytes, 0, INT64, 0),
	)


def record_of(row: GenerationRow, images: list[GenerationImageRow]) -> GenerationRecord:
	read = RowReader(f'generation {row.id}')
	created = read.time('created_at', row.created_at)
	stored = sorted((_image(read, image) for image in images), key=lambda item: item.index)
	record = GenerationRecord(
		id=row.id,
		created_at=created,
		finished_at=read.time('finished_at', row.finished_at, created),
		model_id=read.text('model_id', row.model_id),
		model_name=read.text('model_name', row.model_name),
		model_hash=read.text('model_hash', row.model_hash),
		spec=_spec(read, row),
		scheduler=read.text('scheduler', row.scheduler),
		device=read.text('device', row.device),
		timings=_timings(read, row.timings),
		favourite=bool(row.favourite),
		tags=read.words('tags', row.tags),
		note=read.text('note', row.note),
		state=read.member('state', JobState, row.state, JobState.FAILED),
		error=read.text('error', row.error),
		node=read.text('node', row.node),
		images=stored,
	)
	read.done()
	return record


def used_loras(row: GenerationRow) -> list[tuple[str, str]]:
	"""(id, name) of the LoRAs a record lists; a damaged list reads as none."""
	value = row.loras
	if not isinstance(value, list):
		return []
	return [(str(lora.get('id', '')), str(lora.get('name', ''))) for lora in value if isinstance(lora, dict)]


def filters_of(filters: HistoryFilter) -> list[ColumnElement[bool]]:
	where: list[ColumnElement[bool]] = []
	if filters.model:
		where.append(or_(GenerationRow.model_id == filters.model, GenerationRow.model_name == filters.model))
	if filters.text:
		pattern = contains(filters.text.lower())
		where.append(
			or_(
				func.lower(GenerationRow.prompt).like(pattern, escape=LIKE_ESCAPE),
				func.lower(GenerationRow.negative_prompt).like(pattern, escape=LIKE_ESCAPE),
			)
		)
	if filters.favourite_only:
		where.append(GenerationRow.favourite.is_(True))
	if filters.since is not None:
		where.append(GenerationRow.created_at >= filters.since)
	if filters.until is not None:
		where.append(GenerationRow.created_at < filters.until)
	# JSON columns searched as text: a quoted value matches one list entry (a style name, a LoRA id or name).
	if filters.style:
		pattern = contains(json.dumps(filters.style.lower()))
		where.append(func.lower(cast(GenerationRow.styles, Text)).like(pattern, escape=LIKE_ESCAPE))
	if filters.lora:
		pattern = contains(json.dumps(filters.lora.lower()))
		where.append(func.lower(cast(GenerationRow.loras, Text)).like(pattern, escape=LIKE_ESCAPE))
	return where
