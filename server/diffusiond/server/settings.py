"""One settings object, read from DIFFUSIOND_* environment variables (nested with `__`)."""

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from diffusiond.server.settings_groups import (
	ClusterSettings,
	DownloadSettings,
	HttpSettings,
	LimitsSettings,
	LoraSettings,
	ModelSettings,
	QueueSettings,
)

__all__ = [
	'ClusterSettings',
	'DeviceSettings',
	'DownloadSettings',
	'EmptyTokenError',
	'HttpSettings',
	'LimitsSettings',
	'LoraSettings',
	'ModelSettings',
	'QueueSettings',
	'SecuritySettings',
	'ServerSettings',
	'Settings',
	'StorageSettings',
]

# A 2048x2048 RGBA PNG without compression is ~16 MiB: the largest image a request or an answer carries.
_MAX_SEND_BYTES = 64 * 1024 * 1024
_MAX_RECEIVE_BYTES = 32 * 1024 * 1024


def default_data_dir() -> Path:
	"""`$XDG_DATA_HOME/diffusiond`, else `~/.local/share/diffusiond`."""
	base = os.environ.get('XDG_DATA_HOME') or str(Path.home() / '.local' / 'share')
	return Path(base) / 'diffusiond'


class ServerSettings(BaseModel):
	host: str = Field(default='127.0.0.1', description='TCP bind address; loopback only unless changed.')
	port: int = Field(default=50051, ge=0, le=65535)
	tcp: bool = Field(default=True, description='Listen on host:port; false = only on the Unix socket.')
	socket: Path | None = Field(
		default=None, description='Also listen on this Unix domain socket (its folder is created private, 0700).'
	)
	grace_period_s: float = Field(default=30.0, ge=0, description='How long a running job may finish on shutdown.')
	max_message_bytes: int = Field(
		default=_MAX_SEND_BYTES, ge=4 * 1024 * 1024, description='Largest answer (one image per message).'
	)
	max_receive_bytes: int = Field(
		default=_MAX_RECEIVE_BYTES,
		ge=1024 * 1024,
		description='Largest request: sized for the largest allowed init image; larger ones get RESOURCE_EXHAUSTED.',
	)
	keepalive_time_s: float = Field(
		default=30.0, gt=0, description='Ping an idle connection this often, so silent streams (a long load) survive.'
	)
	keepalive_timeout_s: float = Field(default=20.0, gt=0, description='Drop a connection whose ping goes unanswered.')
	min_client_ping_s: float = Field(default=10.0, gt=0, description='Clients may ping this often without data.')
	stalled_reader_timeout_s: float = Field(
		default=60.0, gt=0, description='A stream whose reader takes no message for this long is cut.'
	)
	port_file: Path | None = Field(default=None, description='Written with the bound port once listening.')


class SecuritySettings(BaseModel):
	token: SecretStr | None = Field(
		default=None, description='API token: every RPC but health then needs `authorization: Bearer <token>`.'
	)
	token_file: Path | None = Field(default=None, description='Read the API token from this file instead.')
	tls_cert: Path | None = Field(default=None, description='PEM certificate chain: TCP serves TLS only.')
	tls_key: Path | None = Field(default=None, description='PEM private key of tls_cert.')
	tls_client_ca: Path | None = Field(
		default=None, description='PEM CA bundle: clients must present a certificate it signed (mutual TLS).'
	)

	@model_validator(mode='after')
	def _pairs(self) -> Self:
		if (self.tls_cert is None) != (self.tls_key is None):
			raise ValueError('tls_cert and tls_key go together: set both or neither')
		if self.tls_client_ca is not None and self.tls_cert is None:
			raise ValueError('tls_client_ca needs tls_cert and tls_key (client certificates are checked over TLS)')
		if self.token is not None and self.token_file is not None:
			raise ValueError('set token or token_file, not both')
		return self

	def api_token(self) -> str | None:
		"""The token from `token` or `token_file` (surrounding whitespace dropped), or None when neither is set.

		A token setting that is present but empty is an error (EmptyTokenError), never "no authentication"."""
		if self.token is not None:
			value, source = self.token.get_secret_value(), 'DIFFUSIOND_SECURITY__TOKEN'
		elif self.token_file is not None:
			value, source = self.token_file.read_text(), f'the API token file {self.token_file}'
		else:
			return None
		if not value.strip():
			raise EmptyTokenError(
				f'{source} is set but empty: put the token in it, or unset it to run without authentication'
			)
		return value.strip()


class EmptyTokenError(ValueError):
	"""A token setting that is present but holds nothing (an empty file, only spaces)."""


class DeviceSettings(BaseModel):
	device: Literal['auto', 'cuda', 'mps', 'cpu'] = 'auto'
	dtype: Literal['auto', 'float16', 'bfloat16', 'float32'] = Field(
		default='auto', description='auto = float16 on CUDA, float32 elsewhere.'
	)
	# Attention runs through PyTorch's SDPA (diffusers' default with torch 2); the options below trade speed
	# for memory or the other way round. README "GPU options" says when each one pays.
	attention_slicing: bool = Field(default=False, description='Attention in slices: less memory, slower.')
	vae_slicing: bool = Field(default=False, description='Decode a batch one image at a time: less memory.')
	vae_tiling: bool = Field(default=False, description='Decode in tiles: large sizes on small GPUs.')
	channels_last: bool = Field(
		default=False, description='UNet in channels-last memory format (often faster on CUDA).'
	)
	cpu_offload: bool = Field(
		default=False, description='Keep models in RAM, move each component to the GPU while it runs (small GPUs).'
	)
	compile: bool = Field(default=False, description='torch.compile the UNet at load, with a warm-up run (CUDA).')
	cpu_threads: int = Field(
		default=0,
		ge=0,
		le=1024,
		description="torch CPU threads, fixed for the daemon's life; 0 = the cores this process may use "
		"(affinity and cgroup quota, not the host's count).",
	)
	png_compress_level: int = Field(default=4, ge=0, le=9, description='zlib level of PNG outputs (0 = fastest).')
	preview_decoder: Literal['auto', 'taesd', 'latent2rgb'] = Field(
		default='auto',
		description='Previews: taesd = the tiny autoencoder in <data_dir>/previewers when present; auto = taesd on '
		'a GPU, latent2rgb on CPU (a TAESD decode at 512x512 takes ~2 s on 2 CPU cores).',
	)
	batch_max_images: int = Field(
		default=1,
		ge=1,
		le=64,
		description='Dynamic batching: queued txt2img jobs that share model, LoRAs, size, steps, sampler and CFG '
		'run as one pipeline call of at most this many images. 1 = off.',
	)
	memory_budget_bytes: int = Field(
		default=0,
		ge=0,
		description="The most a job's working memory (beyond the weights) may take; 0 = what the device has free "
		'when the job starts (CUDA: free device memory; elsewhere: available RAM). Jobs whose estimate exceeds it run '
		'with attention slicing, VAE slicing, VAE tiling as needed, or are refused when even those do not fit.',
	)


class StorageSettings(BaseModel):
	data_dir: Path = Field(default_factory=default_data_dir)
	database_url: str = Field(
		default='', description='SQLAlchemy async URL; empty = SQLite (WAL) at <data_dir>/diffusiond.db.'
	)
	catalog_url: str = Field(
		default='',
		description="Where this daemon's catalog (models, LoRAs, embeddings, VAEs, ControlNets, upscalers: its own "
		'folders) is kept; empty = the database, except on a shared queue (several daemons on one PostgreSQL), '
		'where each daemon keeps its own in SQLite at <data_dir>/diffusiond.db.',
	)
	outputs_url: str = Field(
		default='',
		pattern=r'^(s3://[a-z0-9][a-z0-9.-]{1,62}(/[^?#]*)?)?$',
		description='Where finished images are kept: empty = <data_dir>/outputs (per node); s3://bucket/prefix = an '
		'S3-compatible bucket every daemon reads (credentials from the AWS_* variables or ~/.aws).',
	)
	s3_endpoint_url: str = Field(
		default='', description='The S3 endpoint for anything but AWS (MinIO, SeaweedFS, Ceph, R2…); path-style.'
	)
	s3_region: str = Field(default='', description="The bucket's region; empty = boto3's own default.")
	node_id: str = Field(
		default='',
		pattern=r'^([A-Za-z0-9][A-Za-z0-9._-]{0,63})?$',
		description="This daemon's name in the records it shares a database with others (start-up recovery touches "
		'only its own); empty = generated once and kept in <data_dir>/node-id.',
	)

	@field_validator('data_dir')
	@classmethod
	def _absolute(cls, value: Path) -> Path:
		return value.expanduser().resolve()

	@property
	def models_dir(self) -> Path:
		return self.data_dir / 'models'

	@property
	def outputs_dir(self) -> Path:
		return self.data_dir / 'outputs'

	@property
	def loras_dir(self) -> Path:
		return self.data_dir / 'loras'

	@property
	def embeddings_dir(self) -> Path:
		"""Textual-inversion embeddings (A1111's `embeddings/`)."""
		return self.data_dir / 'embeddings'

	@property
	def vaes_dir(self) -> Path:
		"""VAEs (A1111's `models/VAE`)."""
		return self.data_dir / 'vaes'

	@property
	def controlnets_dir(self) -> Path:
		"""ControlNets as diffusers folders (config.json + weights)."""
		return self.data_dir / 'controlnets'

	@property
	def upscalers_dir(self) -> Path:
		"""Super-resolution models (ESRGAN, Real-ESRGAN, SwinIR…; A1111's `models/ESRGAN`), read by spandrel."""
		return self.data_dir / 'upscalers'

	@property
	def scratch_dir(self) -> Path:
		"""Uploads in progress (archive imports): hidden temporary files, removed at start-up."""
		return self.data_dir / 'tmp'

	@property
	def previewers_dir(self) -> Path:
		"""Tiny autoencoders for previews (diffusers folders): `taesd` (SD1/SD2), `taesdxl` (SDXL)."""
		return self.data_dir / 'previewers'

	@property
	def configs_dir(self) -> Path:
		"""Component configs + tokenizers for single-file checkpoints, one folder per base (sd1, sd2, sdxl)."""
		return self.data_dir / 'configs'


class Settings(BaseSettings):
	model_config = SettingsConfigDict(env_prefix='DIFFUSIOND_', env_nested_delimiter='__', extra='ignore')

	server: ServerSettings = Field(default_factory=ServerSettings)
	security: SecuritySettings = Field(default_factory=SecuritySettings)
	device: DeviceSettings = Field(default_factory=DeviceSettings)
	storage: StorageSettings = Field(default_factory=StorageSettings)
	models: ModelSettings = Field(default_factory=ModelSettings)
	limits: LimitsSettings = Field(default_factory=LimitsSettings)
	downloads: DownloadSettings = Field(default_factory=DownloadSettings)
	loras: LoraSettings = Field(default_factory=LoraSettings)
	http: HttpSettings = Field(default_factory=HttpSettings)
	queue: QueueSettings = Field(default_factory=QueueSettings)
	cluster: ClusterSettings = Field(default_factory=ClusterSettings)
	log_level: Literal['DEBUG', 'INFO', 'WARNING', 'ERROR'] = 'INFO'
