"""img2img: a source image denoised from `strength` of the way (diffusers' image-to-image pipeline)."""

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.errors import FieldViolation
from diffusiond.server.tasks.sources import Sources, decode, fitted_init

DEFAULT_STRENGTH = 0.75


def strength_violations(strength: float | None) -> list[FieldViolation]:
	if strength is not None and (not math.isfinite(strength) or not 0 < strength <= 1):
		return [FieldViolation(field='strength', description=f'strength must be above 0 and at most 1, got {strength}')]
	return []


class Img2ImgRequest(BaseModel):
	model_config = ConfigDict(frozen=True, ser_json_bytes='base64', val_json_bytes='base64')  # the journal's JSON

	kind: Literal['img2img'] = 'img2img'
	init_image: bytes  # as the client sent it (PNG, JPEG or WebP)
	strength: float | None = None  # None = DEFAULT_STRENGTH
	misplaced: list[FieldViolation] = Field(default_factory=list)

	def inpaints(self) -> bool:
		"""Whether the job needs an inpainting model's masked input (a 9-channel model runs nothing else)."""
		return False

	def from_noise(self) -> bool:
		return False

	def violations(self) -> list[FieldViolation]:
		return self.misplaced + strength_violations(self.strength)

	def sources(self, max_pixels: int) -> Sources:
		"""Blocking (image decoding): call through a thread."""
		return decode(self.init_image, None, max_pixels)

	def task(self, sources: Sources | None, width: int, height: int) -> 'Img2Img':
		"""The spec at the job's size (blocking: call through a thread)."""
		if sources is None:
			raise ValueError('img2img needs its sources')
		strength = self.strength if self.strength is not None else DEFAULT_STRENGTH
		return Img2Img(strength=strength, init_image=fitted_init(sources, width, height))


class FromImage(BaseModel):
	"""What the tasks that denoise a source image share (img2img, inpainting)."""

	model_config = ConfigDict(frozen=True)

	kind: str
	strength: float
	init_image: bytes = b''  # PNG at the job's size; empty where it was not kept (history records)

	def progress_steps(self, steps: int) -> int:
		"""diffusers (and A1111) denoise steps x strength of the steps, rounded down."""
		return min(steps, int(steps * self.strength))

	def batches(self) -> bool:
		"""Each job has its own source image: it runs alone."""
		return False

	def extras(self) -> list[tuple[str, str]]:
		return []

	def output_size(self, width: int, height: int) -> tuple[int, int]:
		return width, height

	def work(self, steps: int, width: int, height: int) -> float:
		return float(self.progress_steps(steps) * width * height)


class Img2Img(FromImage):
	kind: Literal['img2img'] = 'img2img'

	def unstored(self) -> str | None:
		"""Why a record of this task cannot simply run again (its sources are not kept), or None."""
		return 'was img2img and its init image is not stored'

	def infotext(self) -> list[tuple[str, str]]:
		return [('Denoising strength', f'{self.strength:g}')]

	def without_sources(self) -> 'Img2Img':
		return self.model_copy(update={'init_image': b''})

	def violations(self, prefix: str) -> list[FieldViolation]:
		"""A stored or imported spec against the request's rules."""
		return [
			violation.model_copy(update={'field': f'{prefix}.{violation.field}'})
			for violation in strength_violations(self.strength)
		]

	def repaired(self) -> 'Img2Img':
		"""A damaged stored value back to its default (what a lenient read shows)."""
		return self.model_copy(update={'strength': DEFAULT_STRENGTH}) if self.violations('') else self
