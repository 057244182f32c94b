"""Mapping between the loras table and the pydantic LoraRecord."""

from diffusiond.server.catalog.lora_probe import LoraFormat, LoraProbe
from diffusiond.server.catalog.lora_schemas import MAX_WEIGHT, LoraRecord
from diffusiond.server.catalog.schemas import FileStamp, ModelBase
from diffusiond.server.store.file_rows import file_fields
from diffusiond.server.store.lenient import INT64, RowReader
from diffusiond.server.store.rows import MAX_WIDTH, PROBED, REPROBE
from diffusiond.server.store.tables import LoraRow


def lora_of(row: LoraRow) -> LoraRecord:
	read = RowReader(f'LoRA {row.id}')
	fields = file_fields(read, row, 'refresh the LoRAs')
	probe = LoraProbe(
		format=read.member('format', LoraFormat, row.format, LoraFormat.KOHYA),
		status=fields.status,
		problem=fields.problem,
		base=read.member('base', ModelBase, row.base, ModelBase.UNKNOWN),
		cross_attention_dim=read.integer('cross_attention_dim', row.cross_attention_dim, 0, MAX_WIDTH, 0),
		rank=read.integer('rank', row.rank, 0, MAX_WIDTH, 0),
		alpha=read.optional_number('alpha', row.alpha, -1e9, 1e9),
		unet=bool(row.unet),
		text_encoder=bool(row.text_encoder),
		modules=read.integer('modules', row.modules, 0, INT64, 0),
		output_name=read.text('output_name', row.output_name),
		trained_on=read.text('trained_on', row.trained_on),
		suggested_triggers=read.words('suggested_triggers', row.suggested_triggers),
		data_offset=read.integer('data_offset', row.data_offset, 0, INT64, 0),
	)
	custom = read.optional_words('trigger_words', row.trigger_words)
	record = LoraRecord(
		id=row.id,
		name=read.text('name', row.name, row.id),
		path=read.text('path', row.path),
		probe=probe,
		size_bytes=fields.size_bytes,
		mtime_ns=fields.mtime_ns,
		sha256=fields.sha256,
		addnet_hash=row.addnet_hash if fields.current and isinstance(row.addnet_hash, str) else None,
		display_name=read.text('display_name', row.display_name),
		tags=read.words('tags', row.tags),
		trigger_words=custom if custom is not None else probe.suggested_triggers,
		custom_triggers=custom is not None,
		default_weight=read.number('default_weight', row.default_weight, 0, MAX_WEIGHT, 1.0),
		enabled=bool(row.enabled),
		note=read.text('note', row.note),
		added_at=read.time('added_at', row.added_at),
		last_used_at=read.optional_time('last_used_at', row.last_used_at),
	)
	read.done()
	return record.model_copy(update={'mtime_ns': REPROBE}) if read.any_of(PROBED) else record


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
