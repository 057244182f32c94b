"""Conversion between model catalog schemas and ModelService messages."""

from datetime import datetime

from google.protobuf import timestamp_pb2

from diffusiond.server.catalog.rules import clean_words, model_changes_violations
from diffusiond.server.catalog.schemas import (
	ModelBase,
	ModelChanges,
	ModelDefaults,
	ModelFormat,
	ModelRecord,
	ModelStatus,
)
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.services.sampler_convert import sampler_from_pb, sampler_to_pb, schedule_from_pb, schedule_to_pb
from diffusiond.server.settings import LimitsSettings
from diffusiond.v1 import model_service_pb2 as model_pb

_FORMATS = {fmt: model_pb.ModelFormat.Value(f'MODEL_FORMAT_{fmt.name}') for fmt in ModelFormat}
BASES: dict[ModelBase, model_pb.ModelBase.ValueType] = {
	base: model_pb.ModelBase.Value(f'MODEL_BASE_{base.name}') for base in ModelBase if base is not ModelBase.UNKNOWN
}
STATUSES = {status: model_pb.ModelStatus.Value(f'MODEL_STATUS_{status.name}') for status in ModelStatus}
UPDATABLE = ('display_name', 'tags', 'defaults')


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
	stamp = timestamp_pb2.Timestamp()
	stamp.FromDatetime(value)
	return stamp


def defaults_to_pb(defaults: ModelDefaults) -> model_pb.ModelDefaults:
	message = model_pb.ModelDefaults()
	if defaults.sampler is not None:
		message.sampler = sampler_to_pb(defaults.sampler)
	if defaults.schedule is not None:
		message.schedule = schedule_to_pb(defaults.schedule)
	if defaults.deep_cache is not None:
		message.deep_cache_interval = defaults.deep_cache
	if defaults.token_merging is not None:
		message.token_merging_ratio = defaults.token_merging
	if defaults.fast_decode is not None:
		message.fast_decode = defaults.fast_decode
	if defaults.steps is not None:
		message.steps = defaults.steps
	if defaults.guidance_scale is not None:
		message.guidance_scale = defaults.guidance_scale
	if defaults.clip_skip is not None:
		message.clip_skip = defaults.clip_skip
	if defaults.vae is not None:
		message.vae = defaults.vae
	return message


def model_to_pb(record: ModelRecord, loaded: bool = False, active: bool = False) -> model_pb.Model:
	message = model_pb.Model(
		id=record.id,
		name=record.name,
		path=record.path,
		format=_FORMATS[record.format],
		base=BASES.get(record.base, model_pb.MODEL_BASE_UNSPECIFIED),
		status=STATUSES[record.status],
		problem=record.problem,
		inpainting=record.inpainting,
		demo=record.demo,
		native_size=record.native_size,
		size_bytes=record.size_bytes,
		sha256=record.sha256 or '',
		short_hash=record.autov2,
		display_name=record.display_name,
		tags=record.tags,
		defaults=defaults_to_pb(record.defaults),
		loaded=loaded,
		active=active,
		added_time=timestamp(record.added_at),
	)
	message.modified_time.FromNanoseconds(record.mtime_ns)
	if record.last_used_at is not None:
		message.last_used_time.CopyFrom(timestamp(record.last_used_at))
	return message


def base_from_pb(value: model_pb.ModelBase.ValueType) -> ModelBase | None:
	return next((base for base, pb in BASES.items() if pb == value), None)


def format_from_pb(value: model_pb.ModelFormat.ValueType) -> ModelFormat | None:
	return next((fmt for fmt, pb in _FORMATS.items() if pb == value), None)


def changes_from_pb(request: model_pb.UpdateModelRequest, limits: LimitsSettings) -> ModelChanges:
	paths = list(request.update_mask.paths) or list(UPDATABLE)
	violations = [
		FieldViolation(field='update_mask', description=f'{path!r} cannot be updated; allowed: {", ".join(UPDATABLE)}')
		for path in paths
		if path not in UPDATABLE
	]
	model = request.model
	defaults = model.defaults
	changes = ModelChanges(
		display_name=model.display_name if 'display_name' in paths else None,
		tags=clean_words(list(model.tags)) if 'tags' in paths else None,
		defaults=ModelDefaults(
			sampler=sampler_from_pb(defaults.sampler) if defaults.sampler else None,
			steps=defaults.steps if defaults.HasField('steps') else None,
			guidance_scale=defaults.guidance_scale if defaults.HasField('guidance_scale') else None,
			clip_skip=defaults.clip_skip if defaults.HasField('clip_skip') else None,
			vae=defaults.vae or None,
			schedule=schedule_from_pb(defaults.schedule) if defaults.schedule else None,
			deep_cache=defaults.deep_cache_interval if defaults.HasField('deep_cache_interval') else None,
			token_merging=defaults.token_merging_ratio if defaults.HasField('token_merging_ratio') else None,
			fast_decode=defaults.fast_decode if defaults.HasField('fast_decode') else None,
		)
		if 'defaults' in paths
		else None,
	)
	violations += model_changes_violations(changes, limits, 'model')
	if violations:
		raise InvalidArgumentError(violations)
	return changes
