"""Mapping between the models table and the catalog's pydantic records (damaged fields read as defaults)."""

from pathlib import PurePosixPath

from diffusiond.server.catalog.probe import PICKLE_SUFFIXES
from diffusiond.server.catalog.schemas import (
	MAX_CLIP_SKIP,
	Architecture,
	FileStamp,
	ModelBase,
	ModelDefaults,
	ModelFormat,
	ModelRecord,
	Probe,
)
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.speed import MAX_DEEP_CACHE, MAX_TOKEN_MERGING
from diffusiond.server.store.file_rows import file_fields
from diffusiond.server.store.lenient import RowReader
from diffusiond.server.store.tables import ModelRow

MAX_SIDE = 16384
MAX_WIDTH = 1 << 20  # channels, attention widths
# What a probe found: when any of it is damaged, the record's mtime reads as REPROBE, which no file has, so the
# next rescan sees the file as changed and probes it again (the row heals itself).
PROBED = {'status', 'format', 'base', 'native_size', 'cross_attention_dim', 'in_channels', 'model_channels', 'rank'}
PROBED |= {'alpha', 'data_offset', 'suggested_triggers', 'size_bytes', 'mtime_ns'}
REPROBE = -1


def _format_of(path: str) -> ModelFormat:
	suffix = PurePosixPath(path).suffix.lower()
	if suffix in PICKLE_SUFFIXES:
		return ModelFormat.PICKLE
	return ModelFormat.SAFETENSORS if suffix == '.safetensors' else ModelFormat.DIFFUSERS


def record_of(row: ModelRow) -> ModelRecord:
	read = RowReader(f'model {row.id}')
	path = read.text('path', row.path)
	fields = file_fields(read, row, 'refresh the models (or restore it)')
	record = ModelRecord(
		id=row.id,
		name=read.text('name', row.name, row.id),
		path=path,
		format=read.member('format', ModelFormat, row.format, _format_of(path)),
		base=read.member('base', ModelBase, row.base, ModelBase.UNKNOWN),
		status=fields.status,
		problem=fields.problem,
		inpainting=bool(row.inpainting),
		demo=bool(row.demo),
		native_size=read.integer('native_size', row.native_size, 8, MAX_SIDE, 512),
		size_bytes=fields.size_bytes,
		mtime_ns=fields.mtime_ns,
		arch=Architecture(
			cross_attention_dim=read.integer('cross_attention_dim', row.cross_attention_dim, 0, MAX_WIDTH, 0),
			in_channels=read.integer('in_channels', row.in_channels, 0, MAX_WIDTH, 0),
			model_channels=read.integer('model_channels', row.model_channels, 0, MAX_WIDTH, 0),
		),
		sha256=fields.sha256,
		display_name=read.text('display_name', row.display_name),
		tags=read.words('tags', row.tags),
		defaults=ModelDefaults(
			sampler=read.named('default_sampler', Sampler, row.default_sampler),
			steps=read.optional_integer('default_steps', row.default_steps, 1, 10_000),
			guidance_scale=read.optional_number('default_guidance', row.default_guidance, 0, 1000),
			clip_skip=read.optional_integer('default_clip_skip', row.default_clip_skip, 1, MAX_CLIP_SKIP),
			vae=None if row.default_vae is None else read.text('default_vae', row.default_vae) or None,
			schedule=read.named('default_schedule', Schedule, row.default_schedule),
			deep_cache=read.optional_integer('default_deep_cache', row.default_deep_cache, 0, MAX_DEEP_CACHE),
			token_merging=read.optional_number(
				'default_token_merging', row.default_token_merging, 0, MAX_TOKEN_MERGING
			),
			fast_decode=row.default_fast_decode if isinstance(row.default_fast_decode, bool) else None,
		),
		added_at=read.time('added_at', row.added_at),
		last_used_at=read.optional_time('last_used_at', row.last_used_at),
	)
	read.done()
	return record.model_copy(update={'mtime_ns': REPROBE}) if read.any_of(PROBED) else record


def apply_probe(row: ModelRow, stamp: FileStamp, probe: Probe) -> None:
	row.path = stamp.path
	row.size_bytes = stamp.size_bytes
	row.mtime_ns = stamp.mtime_ns
	row.format = probe.format.value
	row.base = probe.base.value
	row.status = probe.status.value
	row.problem = probe.problem
	row.inpainting = probe.inpainting
	row.demo = probe.demo
	row.native_size = probe.native_size
	row.cross_attention_dim = probe.arch.cross_attention_dim
	row.in_channels = probe.arch.in_channels
	row.model_channels = probe.arch.model_channels
