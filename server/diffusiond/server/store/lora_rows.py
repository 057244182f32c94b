"""Mapping between the loras table and the pydantic LoraRecord."""

from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe
from diffusiond.server.catalog.lora_schemas import LoraRecord
from diffusiond.server.catalog.schemas import FileStamp, ModelBase, ModelStatus
from diffusiond.server.store.tables import LoraRow


def lora_of(row: LoraRow) -> LoraRecord:
	probe = LoraProbe(
		format=LoraFormat(row.format),
		status=ModelStatus(row.status),
		problem=row.problem,
		base=ModelBase(row.base),
		cross_attention_dim=row.cross_attention_dim,
		rank=row.rank,
		alpha=row.alpha,
		unet=row.unet,
		text_encoder=row.text_encoder,
		modules=row.modules,
		output_name=row.output_name,
		trained_on=row.trained_on,
		suggested_triggers=list(row.suggested_triggers),
		data_offset=row.data_offset,
	)
	current = row.hashed_size == row.size_bytes and row.hashed_mtime_ns == row.mtime_ns
	return LoraRecord(
		id=row.id,
		name=row.name,
		path=row.path,
		probe=probe,
		size_bytes=row.size_bytes,
		mtime_ns=row.mtime_ns,
		sha256=row.sha256 if current else None,
		addnet_hash=row.addnet_hash if current else None,
		display_name=row.display_name,
		tags=list(row.tags),
		trigger_words=list(row.trigger_words if row.trigger_words is not None else row.suggested_triggers),
		custom_triggers=row.trigger_words is not None,
		default_weight=row.default_weight,
		enabled=row.enabled,
		added_at=row.added_at,
		last_used_at=row.last_used_at,
	)


def apply_lora_probe(row: LoraRow, stamp: FileStamp, probe: LoraProbe) -> None:
	row.path = stamp.path
	row.size_bytes = stamp.size_bytes
	row.mtime_ns = stamp.mtime_ns
	row.data_offset = probe.data_offset
	row.format = probe.format.value
	row.status = probe.status.value
	row.problem = probe.problem
	row.base = probe.base.value
	row.cross_attention_dim = probe.cross_attention_dim
	row.rank = probe.rank
	row.alpha = probe.alpha
	row.unet = probe.unet
	row.text_encoder = probe.text_encoder
	row.modules = probe.modules
	row.output_name = probe.output_name
	row.trained_on = probe.trained_on
	row.suggested_triggers = probe.suggested_triggers
