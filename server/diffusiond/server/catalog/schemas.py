"""The catalog's own types: what a probe finds in a file and what the store keeps about a model."""

import enum
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from diffusiond.server.samplers import Sampler, Schedule

AUTOV2_LENGTH = 10
DEMO_MODEL_NAME = 'demo-tiny-random'  # the folder the tiny random demo model is built into


class ModelFormat(enum.Enum):
	DIFFUSERS = 'diffusers'  # a folder with model_index.json
	SAFETENSORS = 'safetensors'  # one .safetensors file (A1111 / Civitai layout)
	PICKLE = 'pickle'  # .ckpt / .pt / .pth / .bin: can run code when unpickled


class ModelBase(enum.Enum):
	UNKNOWN = 'unknown'
	SD1 = 'sd1'
	SD2 = 'sd2'
	SDXL = 'sdxl'


class ModelStatus(enum.Enum):
	READY = 'ready'
	UNSAFE = 'unsafe'  # a pickle checkpoint, refused unless models.allow_pickle
	INVALID = 'invalid'  # unreadable or not a Stable Diffusion checkpoint; `problem` says why
	UNLOADABLE = 'unloadable'  # shown, never stored: configs missing, or its last load failed


class Architecture(BaseModel):
	"""The UNet's shape, as far as configs or tensor shapes tell: matches single files to config folders."""

	cross_attention_dim: int = 0
	in_channels: int = 0
	model_channels: int = 0


REFINER_WIDTH = 1280  # the SDXL refiner's cross-attention: its one text encoder, OpenCLIP bigG


def is_refiner(base: ModelBase, arch: Architecture) -> bool:
	"""An SDXL refiner: it refines images (img2img, or the second stage of an SDXL job), it does not start one."""
	return base is ModelBase.SDXL and arch.cross_attention_dim == REFINER_WIDTH


class Probe(BaseModel):
	"""What a file or folder is, found from configs or the safetensors header alone (no tensors read)."""

	format: ModelFormat
	base: ModelBase = ModelBase.UNKNOWN
	status: ModelStatus = ModelStatus.READY
	problem: str = ''
	inpainting: bool = False
	native_size: int = 512
	demo: bool = False
	arch: Architecture = Field(default_factory=Architecture)


class FileStamp(BaseModel):
	"""A file or folder found by a scan: where it is (relative to the models folder), its size and mtime."""

	path: str
	size_bytes: int
	mtime_ns: int
	folder: bool
	problem: str = ''  # set when the entry cannot be read at all (a symlink loop, a name that is not UTF-8)


MAX_CLIP_SKIP = 12  # A1111's range: 1 (the last CLIP layer) .. 12


class ModelDefaults(BaseModel):
	"""Values used when a request leaves them unset."""

	sampler: Sampler | None = None
	steps: int | None = None
	guidance_scale: float | None = None
	clip_skip: int | None = None
	vae: str | None = None  # a VAE's name (vaes folder); None = the model's own
	schedule: Schedule | None = None  # applied where it goes with the request's sampler (samplers.py)
	deep_cache: int | None = None  # DeepCache interval
	token_merging: float | None = None  # ToMe ratio
	fast_decode: bool | None = None  # decode with the tiny autoencoder (TAESD)


class ModelRecord(BaseModel):
	id: str
	name: str
	path: str
	format: ModelFormat
	base: ModelBase
	status: ModelStatus
	problem: str
	inpainting: bool
	demo: bool
	native_size: int
	size_bytes: int
	mtime_ns: int
	arch: Architecture
	sha256: str | None
	display_name: str
	tags: list[str]
	defaults: ModelDefaults
	added_at: datetime
	last_used_at: datetime | None

	@property
	def autov2(self) -> str:
		return self.sha256[:AUTOV2_LENGTH] if self.sha256 else ''

	def stamp(self) -> FileStamp:
		return FileStamp(path=self.path, size_bytes=self.size_bytes, mtime_ns=self.mtime_ns, folder=False)


class ModelChanges(BaseModel):
	"""An UpdateModel request: only the fields that are set change."""

	display_name: str | None = None
	tags: list[str] | None = None
	defaults: ModelDefaults | None = None


class RefreshResult(BaseModel):
	added: int = 0
	removed: int = 0
	changed: int = 0
	unchanged: int = 0
	restored: int = 0  # unregistered entries listed again first
	elapsed_s: float = 0.0
	stale_ids: list[str] = Field(default_factory=list, description='Removed or changed: drop them from the cache.')


class ModelInfo(BaseModel):
	"""A model as the pipeline loads it."""

	id: str = ''
	name: str
	path: Path
	format: ModelFormat = ModelFormat.DIFFUSERS
	base: ModelBase = ModelBase.UNKNOWN
	native_size: int
	demo: bool = False
	sha256: str | None = None
	config_dir: Path | None = Field(default=None, description='Component configs + tokenizer for a single file.')
	arch: Architecture = Field(default_factory=Architecture)
	defaults: ModelDefaults = Field(default_factory=ModelDefaults)
