"""Internal schemas of the generation domain: requests as validated and resolved (events.py: what jobs emit).

These never import generated protobuf code; `services/convert.py` maps them at the edge.
"""

import enum
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class Sampler(enum.Enum):
	"""A1111 sampler names; member names match the proto enum's suffixes (SAMPLER_<NAME>)."""

	UNSPECIFIED = 'model default'
	EULER = 'Euler'
	EULER_A = 'Euler a'
	HEUN = 'Heun'
	DPMPP_2M = 'DPM++ 2M'
	DPMPP_2M_KARRAS = 'DPM++ 2M Karras'
	DPMPP_SDE = 'DPM++ SDE'
	DPMPP_SDE_KARRAS = 'DPM++ SDE Karras'
	DPM2 = 'DPM2'
	DPM2_A = 'DPM2 a'
	LMS = 'LMS'
	DDIM = 'DDIM'
	PNDM = 'PNDM'
	UNIPC = 'UniPC'
	DEIS = 'DEIS'
	DPMPP_2M_SDE = 'DPM++ 2M SDE'
	DPMPP_2M_SDE_KARRAS = 'DPM++ 2M SDE Karras'
	LMS_KARRAS = 'LMS Karras'
	EULER_KARRAS = 'Euler Karras'


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


class LoraRequest(BaseModel):
	"""A LoRA as a request names it; weight None = the LoRA's default weight."""

	model_config = ConfigDict(frozen=True)

	ref: str
	weight: float | None = None


class LoraSpec(BaseModel):
	"""A resolved LoRA of a job: the file, the weight, and what history records about it."""

	model_config = ConfigDict(frozen=True)

	id: str
	name: str
	path: Path
	weight: float
	short_hash: str
	key: str  # changes when the file changes: id, size, mtime


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
	sampler: Sampler = Sampler.UNSPECIFIED
	seed: int | None = None
	num_images: int | None = None
	output_format: ImageFormat = ImageFormat.PNG
	quality: int | None = None
	loras: list[LoraRequest] = Field(default_factory=list)
	add_trigger_words: bool = False
	styles: list[str] = Field(default_factory=list)
	preview_every: int = 0
	priority: bool = False
	keep_running: bool = False  # a caller that goes away does not cancel the job
	init_image: bytes = b''  # img2img source, still encoded
	strength: float | None = None
	mask_image: bytes = b''  # inpainting mask over init_image, still encoded
	mask_blur: int = 0
	mask_crop_padding: int | None = None

	@property
	def inpaint(self) -> bool:
		"""An inpainting request: an init image and a mask over it."""
		return bool(self.init_image and self.mask_image)


class JobSpec(BaseModel):
	"""A validated job with every value resolved: what the worker runs."""

	model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

	model: str
	prompt: str
	negative_prompt: str
	width: int
	height: int
	steps: int
	guidance_scale: float
	sampler: Sampler
	seeds: list[int]
	output_format: ImageFormat
	quality: int
	loras: list[LoraSpec] = Field(default_factory=list)
	styles: list[str] = Field(default_factory=list)  # names, in the order applied
	preview_every: int = 0  # steps between previews of the first image; 0 = none
	strength: float | None = None  # img2img denoising strength; None = txt2img
	# The decoded img2img source at width x height; kept out of history (a record notes only its strength).
	init_image: Image.Image | None = Field(default=None, exclude=True)
	inpaint: bool = False  # a mask limits the change to its white area
	mask_image: Image.Image | None = Field(default=None, exclude=True)  # thresholded (0/255), blurred, sized
	mask_blur: int = 0  # pixels
	mask_crop_padding: int | None = None  # inpaint only the masked area, grown by this many pixels

	@property
	def progress_steps(self) -> int:
		"""The steps this job denoises, as progress counts them: all of them, or steps x strength for img2img."""
		if self.strength is None:
			return self.steps
		return min(self.steps, int(self.steps * self.strength))
