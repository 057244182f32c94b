"""Mapping between the history tables and GenerationRecords, and the SQL of the listing filters."""

import json

from sqlalchemy import ColumnElement, Text, cast, func, or_

from diffusiond.server.history.schemas import GenerationRecord, HistoryFilter, StoredImage
from diffusiond.server.schemas import JobSpec, JobState
from diffusiond.server.store.like import LIKE_ESCAPE, contains
from diffusiond.server.store.tables import GenerationImageRow, GenerationRow


def record_of(row: GenerationRow, images: list[GenerationImageRow]) -> GenerationRecord:
	return GenerationRecord(
		id=row.id,
		created_at=row.created_at,
		finished_at=row.finished_at,
		model_id=row.model_id,
		model_name=row.model_name,
		model_hash=row.model_hash,
		spec=JobSpec.model_validate_json(row.spec),
		scheduler=row.scheduler,
		device=row.device,
		timings=dict(row.timings),
		favourite=row.favourite,
		tags=list(row.tags),
		note=row.note,
		state=JobState(row.state),
		error=row.error,
		images=[
			StoredImage(
				index=image.index,
				seed=image.seed,
				path=image.path,
				mime_type=image.mime_type,
				width=image.width,
				height=image.height,
				size_bytes=image.size_bytes,
			)
			for image in sorted(images, key=lambda item: item.index)
		],
	)


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
