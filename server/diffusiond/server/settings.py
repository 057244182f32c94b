"""One settings object, read from DIFFUSIOND_* environment variables (nested with `__`)."""

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# 2048x2048 RGBA PNG without compression is ~16 MiB; leave room for the envelope.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def default_data_dir() -> Path:
	"""`$XDG_DATA_HOME/diffusiond`, else `~/.local/share/diffusiond`."""
	base = os.environ.get('XDG_DATA_HOME') or str(Path.home() / '.local' / 'share')
	return Path(base) / 'diffusiond'


class ServerSettings(BaseModel):
	host: str = '127.0.0.1'
	port: int = Field(default=50051, ge=0, le=65535)
	grace_period_s: float = Field(default=30.0, ge=0, description='How long a running job may finish on shutdown.')
	max_message_bytes: int = Field(default=_MAX_MESSAGE_BYTES, ge=4 * 1024 * 1024)
	port_file: Path | None = Field(default=None, description='Written with the bound port once listening.')


class DeviceSettings(BaseModel):
	device: Literal['auto', 'cuda', 'mps', 'cpu'] = 'auto'
	dtype: Literal['auto', 'float16', 'bfloat16', 'float32'] = Field(
		default='auto', description='auto = float16 on CUDA, float32 elsewhere.'
	)


class StorageSettings(BaseModel):
	data_dir: Path = Field(default_factory=default_data_dir)
	database_url: str = Field(
		default='', description='SQLAlchemy async URL; empty = SQLite (WAL) at <data_dir>/diffusiond.db.'
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
	def configs_dir(self) -> Path:
		"""Component configs + tokenizers for single-file checkpoints, one folder per base (sd1, sd2, sdxl)."""
		return self.data_dir / 'configs'


class ModelSettings(BaseModel):
	default_model: str = Field(default='', description='Name of the default model; empty = demo model or first found.')
	demo_model: bool = Field(default=True, description='Build the tiny random demo model when no model exists.')
	load_default_at_start: bool = True
	allow_pickle: bool = Field(
		default=False, description='Load .ckpt/.pt/.bin checkpoints (only ever with torch.load(weights_only=True)).'
	)
	cache_max_models: int = Field(default=3, ge=1, description='Pipelines kept loaded in RAM (one on the device).')
	cache_max_bytes: int = Field(default=0, ge=0, description='Bytes of weights kept in RAM; 0 = half the RAM.')
	hub_cache_dir: Path | None = Field(
		default=None, description='Hugging Face cache searched for single-file configs; unset = HF_HUB_CACHE.'
	)
	hash_in_background: bool = Field(default=True, description='Compute sha256 of checkpoint files in the background.')


class DownloadSettings(BaseModel):
	tokens: dict[str, str] = Field(
		default_factory=dict,
		description='Bearer token per host, e.g. {"civitai.com": "...", "huggingface.co": "hf_..."} (JSON).',
	)
	max_bytes: int = Field(default=64 * 1024**3, ge=1, description='Largest download accepted.')
	min_bytes: int = Field(default=1024 * 1024, ge=0, description='Smaller bodies are refused (error pages).')
	timeout_s: float = Field(default=60.0, gt=0, description='Network inactivity timeout.')
	allowed_schemes: list[str] = Field(default_factory=lambda: ['https', 'http'])


class LoraSettings(BaseModel):
	cache_max_bytes: int = Field(
		default=1024**3, ge=0, description='Parsed LoRA files kept in RAM, so a reused LoRA is not read again.'
	)
	max_adapters: int = Field(
		default=8, ge=1, description='LoRAs kept attached to one loaded model (switching among them is cheap).'
	)


class LimitsSettings(BaseModel):
	max_queue: int = Field(default=16, ge=1, description='Jobs waiting beyond the running one.')
	min_size: int = Field(default=64, ge=8)
	max_size: int = Field(default=2048, ge=64)
	max_steps: int = Field(default=150, ge=1)
	max_images: int = Field(default=8, ge=1)
	max_guidance: float = Field(default=30.0, gt=0)
	max_prompt_chars: int = Field(default=4000, ge=1)
	max_loras: int = Field(default=8, ge=0, description='LoRAs per request.')
	max_styles: int = Field(default=8, ge=0, description='Styles per request.')


class Settings(BaseSettings):
	model_config = SettingsConfigDict(env_prefix='DIFFUSIOND_', env_nested_delimiter='__', extra='ignore')

	server: ServerSettings = Field(default_factory=ServerSettings)
	device: DeviceSettings = Field(default_factory=DeviceSettings)
	storage: StorageSettings = Field(default_factory=StorageSettings)
	models: ModelSettings = Field(default_factory=ModelSettings)
	limits: LimitsSettings = Field(default_factory=LimitsSettings)
	downloads: DownloadSettings = Field(default_factory=DownloadSettings)
	loras: LoraSettings = Field(default_factory=LoraSettings)
	log_level: Literal['DEBUG', 'INFO', 'WARNING', 'ERROR'] = 'INFO'
