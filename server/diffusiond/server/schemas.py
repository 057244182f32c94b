"""Internal schemas of the generation domain: requests as validated and resolved (events.py: what jobs emit).

These never import generated protobuf code; `services/convert.py` maps them at the edge.
"""

import enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.prompting.chunks import PromptTokens
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.tasks import Task, TaskRequest, Txt2ImgRequest


class ImageFormat(enum.Enum):
	PNG = 'image/png'
	JPEG = 'image/jpeg'
	WEBP = 'image/webp'


class JobState(enum.Enum):
	QUEUED = 'queued'
	RUNNING = 'running'
	SUCCEEDED = 'succeeded'
	FAILED = 'failed'
	CANCELLED = 'cancelled'


class Stage(enum.Enum):
	"""The part of a job the device is working on; member names match the proto enum's suffixes (STAGE_<NAME>)."""

	LOADING = 'loading'
	ENCODING_PROMPT = 'encoding the prompt'
	DENOISING = 'denoising'
	UPSCALING = 'upscaling'
	SECOND_PASS = 'second pass'
	DECODING = 'decoding'
	ENCODING_IMAGE = 'encoding the image'
	REFINING = 'refining'

	@property
	def denoises(self) -> bool:
		return self in (Stage.DENOISING, Stage.SECOND_PASS, Stage.REFINING)


class LoraRequest(BaseModel):
	"""A LoRA as a request names it; weight None = the LoRA's default weight."""

	model_config = ConfigDict(frozen=True)

	ref: str
	weight: float | None = None
	in_prompt: bool = False  # named by a <lora:name:weight> tag in the prompt (prompting/lora_tags.py)


class LoraSpec(BaseModel):
	"""A resolved LoRA of a job: the file, the weight, and what history records about it."""

	model_config = ConfigDict(frozen=True)

	id: str
	name: str
	path: Path
	weight: float
	short_hash: str
	key: str  # changes when the file changes: id, size, mtime
	in_prompt: bool = False  # named by a tag in the prompt, which records it; else the infotext adds a tag


class AssetSpec(BaseModel):
	"""A resolved embedding or VAE of a job: the file, and what the infotext and history record about it."""

	model_config = ConfigDict(frozen=True)

	id: str
	name: str  # an embedding: the word the prompt names it by; a VAE: its catalog name
	file: str  # the file's name in its folder (A1111's "VAE: name.safetensors")
	path: Path
	key: str  # changes when the file changes: id, size, mtime
	sha256: str = ''  # '' until the background hasher has hashed it
	vectors: int = 0  # an embedding's


class ControlRequest(BaseModel):
	"""A ControlNet unit as a request gives it."""

	model_config = ConfigDict(frozen=True, ser_json_bytes='base64', val_json_bytes='base64')  # the journal's JSON

	ref: str
	image: bytes  # the control image as sent (PNG, JPEG or WebP): a control map, or an image for the preprocessor
	scale: float = 1.0
	start: float = 0.0  # guidance start / end, fractions of the steps
	end: float = 1.0
	preprocessor: str = 'none'
	low: float = 100.0  # canny's thresholds
	high: float = 200.0


class ControlSpec(BaseModel):
	"""A resolved ControlNet unit of a job."""

	model_config = ConfigDict(frozen=True)

	id: str
	name: str
	path: Path  # the diffusers folder
	key: str
	sha256: str = ''
	image: bytes = b''  # PNG at the job's size; empty where not kept (history records)
	scale: float
	start: float
	end: float
	preprocessor: str = 'none'
	thresholds: tuple[float, float] | None = None  # canny's, as used


class RefinerRequest(BaseModel):
	model_config = ConfigDict(frozen=True)

	ref: str
	switch_at: float = 0.8


class RefinerSpec(BaseModel):
	"""The refiner of a job: the model that finishes the denoising from `switch_at` of the steps."""

	model_config = ConfigDict(frozen=True)

	model: ModelInfo
	switch_at: float

	def first_steps(self, steps: int) -> int:
		"""The steps the first model denoises (as progress counts them)."""
		return max(1, min(steps - 1, round(steps * self.switch_at)))


class GenerateParams(BaseModel):
	"""A generation request as the client sent it; unset optionals are None."""

	model_config = ConfigDict(frozen=True)

	model: str = ''
	prompt: str = ''
	negative_prompt: str = ''
	width: int | None = None
	height: int | None = None
	steps: int | None = None
	guidance_scale: float | None = None
	clip_skip: int | None = None  # A1111's numbering; None = the model's default, else 1
	sampler: Sampler = Sampler.UNSPECIFIED
	schedule: Schedule = Schedule.UNSPECIFIED  # how the sampler spaces its steps (A1111's schedule type)
	deep_cache: int | None = None  # DeepCache interval (0/1 = off); None = the model's default
	token_merging: float | None = None  # ToMe ratio (0 = off); None = the model's default
	fast_decode: bool | None = None  # the final decode by the tiny autoencoder (TAESD); None = the model's default
	seed: int | None = None
	num_images: int | None = None
	output_format: ImageFormat = ImageFormat.PNG
	quality: int | None = None
	loras: list[LoraRequest] = Field(default_factory=list)
	vae: str = ''  # '' = the model's default VAE, else its own; 'none' = its own
	controlnets: list[ControlRequest] = Field(default_factory=list)
	refiner: RefinerRequest | None = None
	add_trigger_words: bool = False
	styles: list[str] = Field(default_factory=list)
	preview_every: int = 0
	priority: bool = False
	keep_running: bool = False  # a caller that goes away does not cancel the job
	task: TaskRequest = Field(default_factory=Txt2ImgRequest)  # chosen once, by the request's conversion


class JobSpec(BaseModel):
	"""A validated job with every value resolved: what the worker runs."""

	model_config = ConfigDict(frozen=True)

	model: str
	prompt: str
	negative_prompt: str
	width: int
	height: int
	steps: int
	guidance_scale: float
	clip_skip: int = 1  # A1111's: 1 = the last CLIP layer
	sampler: Sampler
	schedule: Schedule = Schedule.UNSPECIFIED  # Automatic: the sampler's own
	deep_cache: int = 0  # DeepCache: full UNet passes every N steps, deep features reused between (0 = off)
	token_merging: float = 0.0  # ToMe for SD: the fraction of tokens merged (0 = off)
	fast_decode: bool = False  # the final latents decoded by the tiny autoencoder (TAESD), for drafts
	seeds: list[int]
	output_format: ImageFormat
	quality: int
	loras: list[LoraSpec] = Field(default_factory=list)
	embeddings: list[AssetSpec] = Field(default_factory=list)  # those the prompts name (tokens' fixes)
	vae: AssetSpec | None = None  # None = the model's own
	controlnets: list[ControlSpec] = Field(default_factory=list)
	refiner: RefinerSpec | None = None
	styles: list[str] = Field(default_factory=list)  # names, in the order applied
	preview_every: int = 0  # steps between previews of the first image; 0 = none
	task: Task  # what kind of work, with its own fields (tasks/)
	tokens: PromptTokens | None = None  # the prompts in 75-token chunks (prompting/); None = the engine makes them
	notices: list[str] = Field(default_factory=list)  # what intake did differently (a default VAE that is gone)

	@property
	def progress_steps(self) -> int:
		"""The steps this job denoises, as progress counts them (the task says: all, or steps x strength)."""
		return self.task.progress_steps(self.steps)

	def for_history(self) -> 'JobSpec':
		"""The spec as a history record keeps it: without the task's source images (only their parameters)."""
		controlnets = [unit.model_copy(update={'image': b''}) for unit in self.controlnets]
		return self.model_copy(update={'task': self.task.without_sources(), 'tokens': None, 'controlnets': controlnets})
