"""What an archive may bring in, checked exactly like the RPCs that set the same values.

An archive is a second door into the store: styles, model and LoRA metadata and history records pass the
rules of CreateStyle, UpdateModel, UpdateLora and of the Generate request that made the record, and a
record may only name its own files (history/layout.py). The first violations are reported, all at once.
"""

import math
import uuid

from pydantic import BaseModel, ConfigDict

from diffusiond.server.catalog.lora_schemas import LoraChanges
from diffusiond.server.catalog.rules import (
	clean_words,
	display_name_violation,
	lora_changes_violations,
	model_changes_violations,
	words_violation,
)
from diffusiond.server.catalog.schemas import ModelChanges, ModelDefaults
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.history.archive_format import CatalogContents, LoraEntry, ModelEntry
from diffusiond.server.history.layout import path_problem
from diffusiond.server.jobs.generation_rules import MAX_SEED, spec_violations
from diffusiond.server.records import GenerationRecord
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.styles.book import style_violations
from diffusiond.server.styles.schemas import StyleFields

MAX_REPORTED = 20
MAX_TEXT = 10_000
MAX_TIMINGS = 32


class CatalogChanges(BaseModel):
	"""The catalog documents as the changes they make, every value checked."""

	model_config = ConfigDict(frozen=True)

	styles: list[StyleFields]
	models: list[tuple[str, ModelChanges]]  # by model name
	loras: list[tuple[str, LoraChanges]]  # by LoRA name


def refuse(violations: list[FieldViolation]) -> InvalidArgumentError:
	shown = violations[:MAX_REPORTED]
	if len(violations) > MAX_REPORTED:
		shown.append(FieldViolation(field='archive', description=f'and {len(violations) - MAX_REPORTED} more'))
	shown.append(FieldViolation(field='archive', description='nothing was imported'))
	return InvalidArgumentError(shown)


def _model(entry: ModelEntry, limits: LimitsSettings, prefix: str) -> tuple[ModelChanges, list[FieldViolation]]:
	found: list[FieldViolation] = []
	sampler = None
	if entry.default_sampler:
		try:
			sampler = Sampler[entry.default_sampler]
		except KeyError:
			known = ', '.join(member.name for member in Sampler if member is not Sampler.UNSPECIFIED)
			found.append(
				FieldViolation(
					field=f'{prefix}.default_sampler',
					description=f'unknown sampler {entry.default_sampler[:50]!r}; one of {known}',
				)
			)
	schedule = Schedule.__members__.get(entry.default_schedule or '')
	if entry.default_schedule and (schedule is None or schedule is Schedule.UNSPECIFIED):
		known = ', '.join(member.name for member in Schedule if member is not Schedule.UNSPECIFIED)
		found.append(
			FieldViolation(
				field=f'{prefix}.default_schedule',
				description=f'unknown schedule {entry.default_schedule[:50]!r}; one of {known}',
			)
		)
	defaults = ModelDefaults(
		sampler=sampler,
		steps=entry.default_steps,
		guidance_scale=entry.default_guidance,
		clip_skip=entry.default_clip_skip,
		schedule=schedule,
	)
	changes = ModelChanges(display_name=entry.display_name, tags=clean_words(entry.tags), defaults=defaults)
	return changes, found + model_changes_violations(changes, limits, prefix)


def _lora(entry: LoraEntry, prefix: str) -> tuple[LoraChanges, list[FieldViolation]]:
	triggers = None if entry.trigger_words is None else clean_words(entry.trigger_words)
	changes = LoraChanges(
		display_name=entry.display_name,
		tags=clean_words(entry.tags),
		trigger_words=triggers or None,
		reset_triggers=not triggers,
		default_weight=entry.default_weight,
		enabled=entry.enabled,
		note=entry.note,
	)
	return changes, lora_changes_violations(changes, prefix)


def catalog_changes(catalog: CatalogContents, limits: LimitsSettings) -> CatalogChanges:
	found: list[FieldViolation] = []
	styles = []
	for index, style in enumerate(catalog.styles):
		fields = StyleFields(**style.model_dump())
		found += style_violations(fields, f'styles[{index}]')
		if not style.name:
			found.append(FieldViolation(field=f'styles[{index}].name', description='a style needs a name'))
		styles.append(fields)
	models = []
	for index, model in enumerate(catalog.models):
		changes, problems = _model(model, limits, f'models[{index}]')
		found += problems
		models.append((model.name, changes))
	loras = []
	for index, lora in enumerate(catalog.loras):
		lora_changes, problems = _lora(lora, f'loras[{index}]')
		found += problems
		loras.append((lora.name, lora_changes))
	if found:
		raise refuse(found)
	return CatalogChanges(styles=styles, models=models, loras=loras)


def _text(field: str, value: str, most: int) -> list[FieldViolation]:
	if len(value) > most or '\x00' in value:
		return [FieldViolation(field=field, description=f'at most {most} characters, no NUL')]
	return []


def record_violations(record: GenerationRecord, limits: LimitsSettings, prefix: str) -> list[FieldViolation]:
	"""Every rule an imported history record breaks."""
	try:
		canonical = str(uuid.UUID(record.id)) == record.id
	except ValueError:
		canonical = False
	if not canonical:
		return [FieldViolation(field=f'{prefix}.id', description=f'{record.id[:60]!r} is not a job id (a UUID)')]
	found = spec_violations(record.spec, limits, f'{prefix}.spec')
	for field, value, most in (
		('model_id', record.model_id, 64),
		('model_name', record.model_name, 512),
		('model_hash', record.model_hash, 64),
		('scheduler', record.scheduler, 128),
		('device', record.device, 256),
		('note', record.note, MAX_TEXT),
		('error', record.error, MAX_TEXT),
	):
		found += _text(f'{prefix}.{field}', value, most)
	found += display_name_violation(f'{prefix}.model_name', record.model_name)
	found += words_violation(f'{prefix}.tags', record.tags, 64)
	if len(record.timings) > MAX_TIMINGS or any(
		len(key) > 64 or not math.isfinite(value) or value < 0 for key, value in record.timings.items()
	):
		found.append(FieldViolation(field=f'{prefix}.timings', description='timings are finite seconds >= 0'))
	indexes = [image.index for image in record.images]
	if len(set(indexes)) != len(indexes) or any(not 0 <= index < len(record.spec.seeds) for index in indexes):
		found.append(FieldViolation(field=f'{prefix}.images', description='one image per index of the job'))
	for position, image in enumerate(record.images):
		where = f'{prefix}.images[{position}]'
		if problem := path_problem(image.path, record.id, image.index, image.mime_type):
			found.append(FieldViolation(field=f'{where}.path', description=problem))
		if not (0 < image.width <= limits.max_size and 0 < image.height <= limits.max_size):
			found.append(FieldViolation(field=f'{where}.width', description=f'1 to {limits.max_size} pixels a side'))
		if not 0 <= image.seed <= MAX_SEED or not 0 <= image.size_bytes <= 2**40:
			found.append(FieldViolation(field=f'{where}.seed', description='a seed of 0..2^63-1 and a real size'))
	return found


def check_records(records: list[GenerationRecord], limits: LimitsSettings, first: int) -> None:
	found: list[FieldViolation] = []
	for offset, record in enumerate(records):
		found += record_violations(record, limits, f'generations[{first + offset}]')
	if found:
		raise refuse(found)
