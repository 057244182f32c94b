"""ORM tables. Only repositories touch these; everything else sees pydantic models."""

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from diffusiond.server.store.types import StoredJSON, StoredTime


class Base(DeclarativeBase):
	pass


class ModelRow(Base):
	__tablename__ = 'models'

	id: Mapped[str] = mapped_column(String(32), primary_key=True)
	name: Mapped[str] = mapped_column(String(512), unique=True, index=True)
	path: Mapped[str] = mapped_column(Text, unique=True)  # relative to the models folder
	format: Mapped[str] = mapped_column(String(32))
	base: Mapped[str] = mapped_column(String(32), index=True)
	status: Mapped[str] = mapped_column(String(32))
	problem: Mapped[str] = mapped_column(Text, default='')
	inpainting: Mapped[bool] = mapped_column(default=False)
	demo: Mapped[bool] = mapped_column(default=False)
	hidden: Mapped[bool] = mapped_column(default=False)  # unregistered by DeleteModel, file kept
	native_size: Mapped[int] = mapped_column(Integer)
	size_bytes: Mapped[int] = mapped_column(BigInteger)
	mtime_ns: Mapped[int] = mapped_column(BigInteger)
	cross_attention_dim: Mapped[int] = mapped_column(Integer, default=0)
	in_channels: Mapped[int] = mapped_column(Integer, default=0)
	model_channels: Mapped[int] = mapped_column(Integer, default=0)
	sha256: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
	hashed_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
	hashed_mtime_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
	display_name: Mapped[str] = mapped_column(String(512), default='')
	tags: Mapped[list[str]] = mapped_column(StoredJSON, default=list)
	default_sampler: Mapped[str | None] = mapped_column(String(64), default=None)
	default_steps: Mapped[int | None] = mapped_column(Integer, default=None)
	default_guidance: Mapped[float | None] = mapped_column(Float, default=None)
	default_clip_skip: Mapped[int | None] = mapped_column(Integer, default=None)
	default_vae: Mapped[str | None] = mapped_column(String(512), default=None)  # a VAE's name; None = its own
	default_schedule: Mapped[str | None] = mapped_column(String(32), default=None)  # a Schedule member name
	default_deep_cache: Mapped[int | None] = mapped_column(Integer, default=None)
	default_token_merging: Mapped[float | None] = mapped_column(Float, default=None)
	default_fast_decode: Mapped[bool | None] = mapped_column(default=None)
	added_at: Mapped[datetime] = mapped_column(StoredTime)
	last_used_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None)


class LoraRow(Base):
	__tablename__ = 'loras'

	id: Mapped[str] = mapped_column(String(32), primary_key=True)
	name: Mapped[str] = mapped_column(String(512), unique=True, index=True)
	path: Mapped[str] = mapped_column(Text, unique=True)  # relative to the loras folder
	format: Mapped[str] = mapped_column(String(32))
	base: Mapped[str] = mapped_column(String(32), index=True)
	status: Mapped[str] = mapped_column(String(32))
	problem: Mapped[str] = mapped_column(Text, default='')
	cross_attention_dim: Mapped[int] = mapped_column(Integer, default=0)
	rank: Mapped[int] = mapped_column(Integer, default=0)
	alpha: Mapped[float | None] = mapped_column(Float, default=None)
	unet: Mapped[bool] = mapped_column(default=False)
	text_encoder: Mapped[bool] = mapped_column(default=False)
	modules: Mapped[int] = mapped_column(Integer, default=0)
	output_name: Mapped[str] = mapped_column(String(512), default='')
	trained_on: Mapped[str] = mapped_column(String(512), default='')
	suggested_triggers: Mapped[list[str]] = mapped_column(StoredJSON, default=list)
	size_bytes: Mapped[int] = mapped_column(BigInteger)
	mtime_ns: Mapped[int] = mapped_column(BigInteger)
	data_offset: Mapped[int] = mapped_column(BigInteger, default=0)
	sha256: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
	addnet_hash: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
	hashed_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
	hashed_mtime_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
	display_name: Mapped[str] = mapped_column(String(512), default='')
	tags: Mapped[list[str]] = mapped_column(StoredJSON, default=list)
	trigger_words: Mapped[list[str] | None] = mapped_column(StoredJSON, default=None)  # None = the suggested ones
	note: Mapped[str] = mapped_column(Text, default='')  # the user's: what it is for, how it works best
	default_weight: Mapped[float] = mapped_column(Float, default=1.0)
	enabled: Mapped[bool] = mapped_column(default=True)
	hidden: Mapped[bool] = mapped_column(default=False)
	added_at: Mapped[datetime] = mapped_column(StoredTime)
	last_used_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None)


class AssetColumns:
	"""The columns of the embeddings and the vaes tables: one file each, probed from its shapes."""

	id: Mapped[str] = mapped_column(String(32), primary_key=True)
	name: Mapped[str] = mapped_column(String(512), unique=True, index=True)
	path: Mapped[str] = mapped_column(Text, unique=True)  # relative to its folder
	status: Mapped[str] = mapped_column(String(32))
	problem: Mapped[str] = mapped_column(Text, default='')
	layout: Mapped[str] = mapped_column(String(32), default='unknown')
	base: Mapped[str] = mapped_column(String(32), index=True)
	pickle: Mapped[bool] = mapped_column(default=False)
	width: Mapped[int] = mapped_column(Integer, default=0)
	vectors: Mapped[int] = mapped_column(Integer, default=0)
	size_bytes: Mapped[int] = mapped_column(BigInteger)
	mtime_ns: Mapped[int] = mapped_column(BigInteger)
	sha256: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
	hashed_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
	hashed_mtime_ns: Mapped[int | None] = mapped_column(BigInteger, default=None)
	hidden: Mapped[bool] = mapped_column(default=False)
	added_at: Mapped[datetime] = mapped_column(StoredTime)
	last_used_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None)


class LoraVectorRow(Base):
	"""A LoRA's text embedding for recommendations (recommend/), kept with the catalog; made again when its text or
	the embedding model changes."""

	__tablename__ = 'lora_vectors'

	lora_id: Mapped[str] = mapped_column(String(32), primary_key=True)
	embedder: Mapped[str] = mapped_column(String(64))  # the model's name and weights' digest
	text_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the text it embeds
	vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class EmbeddingRow(AssetColumns, Base):
	__tablename__ = 'embeddings'


class VaeRow(AssetColumns, Base):
	__tablename__ = 'vaes'


class ControlNetRow(AssetColumns, Base):
	__tablename__ = 'controlnets'


class UpscalerRow(AssetColumns, Base):
	__tablename__ = 'upscalers'

	architecture: Mapped[str] = mapped_column(String(64), default='')
	scale: Mapped[int] = mapped_column(Integer, default=0)
	purpose: Mapped[str] = mapped_column(String(32), default='')


class StyleRow(Base):
	__tablename__ = 'styles'

	id: Mapped[str] = mapped_column(String(32), primary_key=True)
	name: Mapped[str] = mapped_column(String(100), unique=True, index=True)
	prompt: Mapped[str] = mapped_column(Text, default='')
	negative_prompt: Mapped[str] = mapped_column(Text, default='')
	description: Mapped[str] = mapped_column(Text, default='')
	tags: Mapped[list[str]] = mapped_column(StoredJSON, default=list)
	builtin: Mapped[bool] = mapped_column(default=False)
	created_at: Mapped[datetime] = mapped_column(StoredTime)
	updated_at: Mapped[datetime] = mapped_column(StoredTime)
	last_used_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None)


class GenerationRow(Base):
	__tablename__ = 'generations'

	id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the job id
	created_at: Mapped[datetime] = mapped_column(StoredTime, index=True)
	finished_at: Mapped[datetime] = mapped_column(StoredTime)
	model_id: Mapped[str] = mapped_column(String(32), index=True)
	model_name: Mapped[str] = mapped_column(String(512))
	model_hash: Mapped[str] = mapped_column(String(16), default='')
	prompt: Mapped[str] = mapped_column(Text)
	negative_prompt: Mapped[str] = mapped_column(Text)
	styles: Mapped[list[str]] = mapped_column(StoredJSON, default=list)
	loras: Mapped[list[dict[str, str | float]]] = mapped_column(StoredJSON, default=list)
	spec: Mapped[str] = mapped_column(Text)  # the JobSpec as JSON: everything needed to run it again
	scheduler: Mapped[str] = mapped_column(String(128))
	device: Mapped[str] = mapped_column(String(128))
	timings: Mapped[dict[str, float]] = mapped_column(StoredJSON, default=dict)
	favourite: Mapped[bool] = mapped_column(default=False)
	tags: Mapped[list[str]] = mapped_column(StoredJSON, default=list)
	note: Mapped[str] = mapped_column(Text, default='')
	state: Mapped[str] = mapped_column(String(16), default='succeeded')  # running until its files are written
	error: Mapped[str] = mapped_column(Text, default='')
	node: Mapped[str] = mapped_column(String(64), default='', index=True)  # the daemon that ran it


class GenerationImageRow(Base):
	__tablename__ = 'generation_images'

	generation_id: Mapped[str] = mapped_column(ForeignKey('generations.id', ondelete='CASCADE'), primary_key=True)
	index: Mapped[int] = mapped_column(Integer, primary_key=True)
	seed: Mapped[int] = mapped_column(BigInteger)
	path: Mapped[str] = mapped_column(Text, unique=True)  # relative to the outputs folder; one record per file
	mime_type: Mapped[str] = mapped_column(String(32))
	width: Mapped[int] = mapped_column(Integer)
	height: Mapped[int] = mapped_column(Integer)
	size_bytes: Mapped[int] = mapped_column(BigInteger)


class JobRow(Base):
	"""A generation job from its acceptance to its end: what a restart needs to run it again (jobs/journal.py)."""

	__tablename__ = 'jobs'

	id: Mapped[str] = mapped_column(String(36), primary_key=True)
	node: Mapped[str] = mapped_column(String(64), index=True)  # the daemon that accepted it
	state: Mapped[str] = mapped_column(String(16), index=True)
	priority: Mapped[bool] = mapped_column(default=False)
	keep_running: Mapped[bool] = mapped_column(default=False)
	seq: Mapped[int] = mapped_column(BigInteger)  # acceptance order
	params: Mapped[str] = mapped_column(Text)  # the GenerateParams as JSON: seed fixed, source images in base64
	info: Mapped[str] = mapped_column(Text)  # the JobInfo at acceptance, as JSON (ListJobs of finished jobs)
	attempts: Mapped[int] = mapped_column(Integer, default=0)  # times it started running
	created_at: Mapped[datetime] = mapped_column(StoredTime, index=True)
	deadline_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None)
	started_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None)
	finished_at: Mapped[datetime | None] = mapped_column(StoredTime, default=None, index=True)
	reason: Mapped[str] = mapped_column(String(64), default='')  # how it ended: an error reason, or ''
	error: Mapped[str] = mapped_column(Text, default='')
	model: Mapped[str] = mapped_column(String(512), default='')  # its model's name (a claim prefers loaded ones)
	runner: Mapped[str] = mapped_column(String(64), default='', index=True)  # the node running it ('' = none yet)
	runner_epoch: Mapped[int] = mapped_column(Integer, default=0)  # that node's epoch when it claimed the job
	forwarded: Mapped[bool] = mapped_column(default=False)  # accepted by a node without its model (cluster/forward.py)


class JobEventRow(Base):
	"""An event of a job, for the daemons that follow it from elsewhere (cluster/relay.py): NOTIFY names the row."""

	__tablename__ = 'job_events'

	id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, 'sqlite'), primary_key=True, autoincrement=True)
	job_id: Mapped[str] = mapped_column(String(36), index=True)
	body: Mapped[str] = mapped_column(Text)  # a RelayedEvent as JSON
	at: Mapped[datetime] = mapped_column(StoredTime, index=True)


class NodeRow(Base):
	"""A daemon on this database: its lease, renewed by its heartbeat (cluster/heartbeat.py)."""

	__tablename__ = 'nodes'

	id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the node id
	address: Mapped[str] = mapped_column(String(512), default='')  # where its gRPC server listens
	device: Mapped[str] = mapped_column(String(256), default='')
	epoch: Mapped[int] = mapped_column(Integer, default=1)  # one more at each start: a stale holder is fenced
	state: Mapped[str] = mapped_column(String(16), default='serving')  # serving | stopped
	queue_depth: Mapped[int] = mapped_column(Integer, default=0)
	busy: Mapped[bool] = mapped_column(default=False)
	loaded: Mapped[list[str]] = mapped_column(StoredJSON, default=list)  # the names of its loaded models
	models: Mapped[list[str]] = mapped_column(StoredJSON, default=list)  # the names of the models it can run
	started_at: Mapped[datetime] = mapped_column(StoredTime)
	heartbeat_at: Mapped[datetime] = mapped_column(StoredTime, index=True)
