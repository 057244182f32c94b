"""Mapping between the models table and the catalog's pydantic records."""

from diffusiond.server.catalog.schemas import (
	Architecture,
	FileStamp,
	ModelBase,
	ModelDefaults,
	ModelFormat,
	ModelRecord,
	ModelStatus,
	Probe,
)
from diffusiond.server.schemas import Sampler
from diffusiond.server.store.tables import ModelRow


def record_of(row: ModelRow) -> ModelRecord:
	return ModelRecord(
		id=row.id,
		name=row.name,
		path=row.path,
		format=ModelFormat(row.format),
		base=ModelBase(row.base),
		status=ModelStatus(row.status),
		problem=row.problem,
		inpainting=row.inpainting,
		demo=row.demo,
		native_size=row.native_size,
		size_bytes=row.size_bytes,
		mtime_ns=row.mtime_ns,
		arch=Architecture(
			cross_attention_dim=row.cross_attention_dim, in_channels=row.in_channels, model_channels=row.model_channels
		),
		sha256=row.sha256 if row.hashed_size == row.size_bytes and row.hashed_mtime_ns == row.mtime_ns else None,
		display_name=row.display_name,
		tags=list(row.tags),
		defaults=ModelDefaults(
			sampler=Sampler[row.default_sampler] if row.default_sampler else None,
			steps=row.default_steps,
			guidance_scale=row.default_guidance,
		),
		added_at=row.added_at,
		last_used_at=row.last_used_at,
	)


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
