"""Conversion between LoRA catalog schemas and LoraService messages."""

from diffusiond.server.catalog.lora_probe import LoraFormat
from diffusiond.server.catalog.lora_schemas import LoraChanges, LoraRecord
from diffusiond.server.catalog.rules import clean_words, lora_changes_violations
from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.services.model_convert import BASES, STATUSES, timestamp
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import model_service_pb2 as model_pb

_FORMATS = {fmt: lora_pb.LoraFormat.Value(f'LORA_FORMAT_{fmt.name}') for fmt in LoraFormat}
UPDATABLE = ('display_name', 'tags', 'trigger_words', 'default_weight', 'enabled', 'note')


def lora_to_pb(record: LoraRecord) -> lora_pb.Lora:
	probe = record.probe
	message = lora_pb.Lora(
		id=record.id,
		name=record.name,
		path=record.path,
		format=_FORMATS[probe.format],
		base=BASES.get(probe.base, model_pb.MODEL_BASE_UNSPECIFIED),
		status=STATUSES[probe.status],
		problem=probe.problem,
		rank=probe.rank,
		unet=probe.unet,
		text_encoder=probe.text_encoder,
		modules=probe.modules,
		output_name=probe.output_name,
		trained_on=probe.trained_on,
		suggested_trigger_words=probe.suggested_triggers,
		trigger_words=record.trigger_words,
		display_name=record.display_name,
		tags=record.tags,
		default_weight=record.default_weight,
		enabled=record.enabled,
		note=record.note,
		size_bytes=record.size_bytes,
		sha256=record.sha256 or '',
		addnet_hash=record.addnet_hash or '',
		short_hash=record.short_hash,
		added_time=timestamp(record.added_at),
	)
	if probe.alpha is not None:
		message.alpha = probe.alpha
	message.modified_time.FromNanoseconds(record.mtime_ns)
	if record.last_used_at is not None:
		message.last_used_time.CopyFrom(timestamp(record.last_used_at))
	return message


def base_filter(value: model_pb.ModelBase.ValueType) -> ModelBase | None:
	return next((base for base, pb in BASES.items() if pb == value), None)


def lora_changes_from_pb(request: lora_pb.UpdateLoraRequest) -> LoraChanges:
	paths = list(request.update_mask.paths) or list(UPDATABLE)
	violations = [
		FieldViolation(field='update_mask', description=f'{path!r} cannot be updated; allowed: {", ".join(UPDATABLE)}')
		for path in paths
		if path not in UPDATABLE
	]
	lora = request.lora
	triggers = clean_words(list(lora.trigger_words))
	changes = LoraChanges(
		display_name=lora.display_name if 'display_name' in paths else None,
		tags=clean_words(list(lora.tags)) if 'tags' in paths else None,
		trigger_words=triggers if 'trigger_words' in paths and triggers else None,
		reset_triggers='trigger_words' in paths and not triggers,
		default_weight=lora.default_weight if 'default_weight' in paths else None,
		enabled=lora.enabled if 'enabled' in paths else None,
		note=lora.note.strip() if 'note' in paths else None,
	)
	violations += lora_changes_violations(changes, 'lora')
	if violations:
		raise InvalidArgumentError(violations)
	return changes
