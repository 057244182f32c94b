"""Hires fix (A1111's `enable_hr`): text to image at the job's size, that result upscaled (in latent space, or
decoded and resized as an image), then denoised again at the larger size from `strength` of the way (img2img).
One job, one stream, one history record; the second pass starts from fresh generators of the same seeds, so
a job is the composition of two direct diffusers calls (tested) and Regenerate gives it again exactly."""

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.errors import FieldViolation
from diffusiond.server.prompting.chunks import PromptTokens
from diffusiond.server.prompting.lora_tags import find_tags
from diffusiond.server.samplers import Sampler
from diffusiond.server.tasks.sources import Sources
from diffusiond.server.tasks.upscaler_file import UpscalerFile

# A1111's latent upscaler names → torch interpolation (mode, antialias)
LATENT_MODES = {
	'Latent': ('bilinear', False),
	'Latent (antialiased)': ('bilinear', True),
	'Latent (bicubic)': ('bicubic', False),
	'Latent (bicubic antialiased)': ('bicubic', True),
	'Latent (nearest)': ('nearest', False),
	'Latent (nearest-exact)': ('nearest-exact', False),
}
IMAGE_UPSCALERS = ('Lanczos', 'Nearest', 'None')  # the decoded first pass resized by Pillow ('None' = Lanczos)
# Any other name is an upscaler of the upscalers folder (resolved at intake: NOT_FOUND when there is none).
DEFAULT_UPSCALER = 'Latent'
DEFAULT_SCALE = 2.0
DEFAULT_STRENGTH = 0.7  # A1111's hires denoising strength
MAX_SCALE = 4.0


def _problems(scale: float | None, width: int, height: int, upscaler: str, strength: float | None) -> list[str]:
	found = []
	if scale is not None and (not math.isfinite(scale) or not 1 < scale <= MAX_SCALE):
		found.append(f'hires.scale must be above 1 and at most {MAX_SCALE:g}, got {scale}')
	if scale is not None and (width or height):
		found.append('hires takes a scale or a width/height, not both')
	for field, value in (('width', width), ('height', height)):
		if value % 8:
			found.append(f'hires.{field} must be a multiple of 8, got {value}')
	if len(upscaler) > 512 or '\x00' in upscaler:
		found.append('hires.upscaler is a name of at most 512 characters, no NUL')
	if strength is not None and (not math.isfinite(strength) or not 0 < strength <= 1):
		found.append(f'hires.denoising_strength must be above 0 and at most 1, got {strength}')
	return found


class HiresRequest(BaseModel):
	model_config = ConfigDict(frozen=True)

	kind: Literal['hires'] = 'hires'
	scale: float | None = None  # A1111's hr_scale; None with no size = DEFAULT_SCALE
	width: int = 0  # A1111's hr_resize_x / hr_resize_y; one of them alone keeps the aspect ratio
	height: int = 0
	upscaler: str = ''  # '' = DEFAULT_UPSCALER
	steps: int = 0  # second-pass steps; 0 = the first pass's
	strength: float | None = None  # None = DEFAULT_STRENGTH
	prompt: str = ''  # A1111's hr_prompt / hr_negative_prompt / hr_sampler_name: '' / UNSPECIFIED = the first pass's
	negative_prompt: str = ''
	sampler: Sampler = Sampler.UNSPECIFIED
	misplaced: list[FieldViolation] = Field(default_factory=list)

	def inpaints(self) -> bool:
		return False

	def from_noise(self) -> bool:
		return True

	def violations(self) -> list[FieldViolation]:
		found = _problems(self.scale, self.width, self.height, self.upscaler, self.strength)
		if find_tags(self.prompt)[0]:
			found.append('<lora:…> tags go in the main prompt: the second pass runs with the same LoRAs')
		return self.misplaced + [FieldViolation(field='hires', description=problem) for problem in found]

	def sources(self, max_pixels: int) -> Sources | None:
		return None

	def task(self, sources: Sources | None, width: int, height: int) -> 'Hires':
		"""The second pass's size from the first's (A1111's hr_upscale_to_x/y, down to a multiple of 8)."""
		scale = self.scale if self.scale is not None or self.width or self.height else DEFAULT_SCALE
		if scale is not None:
			to_width, to_height = int(width * scale), int(height * scale)
		else:
			to_width = self.width or int(width * self.height / height)
			to_height = self.height or int(height * self.width / width)
		return Hires(
			scale=scale or 0.0,
			width=to_width // 8 * 8,
			height=to_height // 8 * 8,
			upscaler=self.upscaler or DEFAULT_UPSCALER,
			steps=self.steps,
			strength=self.strength if self.strength is not None else DEFAULT_STRENGTH,
			prompt=self.prompt,
			negative_prompt=self.negative_prompt,
			sampler=self.sampler,
		)


class Hires(BaseModel):
	model_config = ConfigDict(frozen=True)

	kind: Literal['hires'] = 'hires'
	scale: float  # as asked; 0 = a size was asked
	width: int  # the second pass's (the images') size
	height: int
	upscaler: str
	file: UpscalerFile | None = None  # an upscaler of the folder (intake), for a name that is no built-in mode
	steps: int  # second-pass steps; 0 = the first pass's
	strength: float
	prompt: str = ''  # the second pass's, styled; '' = the first pass's
	negative_prompt: str = ''
	sampler: Sampler = Sampler.UNSPECIFIED  # UNSPECIFIED = the first pass's
	tokens: PromptTokens | None = None  # the second pass's prompts in chunks, where it has its own (intake)

	def by_model(self) -> bool:
		"""Upscaled by a model of the upscalers folder (not a latent mode or a Pillow resize)."""
		return self.upscaler not in LATENT_MODES and self.upscaler not in IMAGE_UPSCALERS

	def own_prompts(self) -> bool:
		return bool(self.prompt or self.negative_prompt)

	def second_steps(self, steps: int) -> int:
		return self.steps or steps

	def progress_steps(self, steps: int) -> int:
		"""The first pass's steps, then the second's steps x strength (rounded down, as img2img denoises)."""
		second = self.second_steps(steps)
		return steps + min(second, int(second * self.strength))

	def batches(self) -> bool:
		return False

	def unstored(self) -> str | None:
		return None

	def infotext(self) -> list[tuple[str, str]]:
		return [('Denoising strength', f'{self.strength:g}')]

	def extras(self) -> list[tuple[str, str]]:
		"""A1111's hires fields, written after clip skip (its extra_generation_params)."""
		size = ('Hires upscale', f'{self.scale:g}') if self.scale else ('Hires resize', f'{self.width}x{self.height}')
		steps = [('Hires steps', str(self.steps))] if self.steps else []
		found = [size, *steps, ('Hires upscaler', self.upscaler)]
		if self.sampler is not Sampler.UNSPECIFIED:
			found.append(('Hires sampler', self.sampler.value))
		if self.prompt:
			found.append(('Hires prompt', self.prompt))
		if self.negative_prompt:
			found.append(('Hires negative prompt', self.negative_prompt))
		return found

	def output_size(self, width: int, height: int) -> tuple[int, int]:
		return self.width, self.height

	def work(self, steps: int, width: int, height: int) -> float:
		"""The first pass at the job's size, the second at the larger one."""
		return float(steps * width * height + (self.progress_steps(steps) - steps) * self.width * self.height)

	def without_sources(self) -> 'Hires':
		return self.model_copy(update={'tokens': None})

	def violations(self, prefix: str) -> list[FieldViolation]:
		scale = self.scale or None
		width, height = (0, 0) if scale else (self.width, self.height)
		found = _problems(scale, width, height, self.upscaler, self.strength)
		if self.steps < 0:
			found.append(f'hires.steps must not be negative, got {self.steps}')
		return [FieldViolation(field=f'{prefix}.hires', description=problem) for problem in found]

	def repaired(self) -> 'Hires':
		return self if not self.violations('') else self.model_copy(update={'strength': DEFAULT_STRENGTH})
