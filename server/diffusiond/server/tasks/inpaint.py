"""Inpainting: a source image repainted where its mask is white and kept exactly where it is black."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.errors import FieldViolation
from diffusiond.server.tasks.img2img import DEFAULT_STRENGTH, FromImage, strength_violations
from diffusiond.server.tasks.sources import Sources, decode, fitted_init, fitted_mask

MAX_MASK_BLUR = 64
MAX_MASK_CROP_PADDING = 1024


class InpaintRequest(BaseModel):
	model_config = ConfigDict(frozen=True, ser_json_bytes='base64', val_json_bytes='base64')  # the journal's JSON

	kind: Literal['inpaint'] = 'inpaint'
	init_image: bytes
	mask_image: bytes  # white = repaint, black = keep; as the client sent it
	strength: float | None = None
	mask_blur: int = 0
	mask_crop_padding: int | None = None
	misplaced: list[FieldViolation] = Field(default_factory=list)

	def inpaints(self) -> bool:
		"""Whether the job needs an inpainting model's masked input (a 9-channel model runs nothing else)."""
		return True

	def from_noise(self) -> bool:
		return False

	def violations(self) -> list[FieldViolation]:
		found = self.misplaced + strength_violations(self.strength)
		for field, value, most in (
			('mask_blur', self.mask_blur, MAX_MASK_BLUR),
			('mask_crop_padding', self.mask_crop_padding, MAX_MASK_CROP_PADDING),
		):
			if value is not None and not 0 <= value <= most:
				found.append(
					FieldViolation(field=field, description=f'{field} must be at most {most} pixels, got {value}')
				)
		return found

	def sources(self, max_pixels: int) -> Sources:
		"""Blocking (image decoding): call through a thread."""
		return decode(self.init_image, self.mask_image, max_pixels)

	def task(self, sources: Sources | None, width: int, height: int) -> 'Inpaint':
		"""The spec at the job's size (blocking: call through a thread)."""
		if sources is None:
			raise ValueError('inpainting needs its sources')
		return Inpaint(
			strength=self.strength if self.strength is not None else DEFAULT_STRENGTH,
			mask_blur=self.mask_blur,
			mask_crop_padding=self.mask_crop_padding,
			init_image=fitted_init(sources, width, height),
			mask_image=fitted_mask(sources, width, height, self.mask_blur),
		)


class Inpaint(FromImage):
	kind: Literal['inpaint'] = 'inpaint'
	mask_blur: int = 0  # pixels
	mask_crop_padding: int | None = None  # inpaint only the masked area, grown by this many pixels
	mask_image: bytes = b''  # PNG: thresholded to 0/255, then blurred by mask_blur

	def unstored(self) -> str | None:
		return 'was inpainting and its init image and mask are not stored'

	def infotext(self) -> list[tuple[str, str]]:
		fields = [('Denoising strength', f'{self.strength:g}'), ('Inpaint', 'masked area')]
		if self.mask_blur:
			fields.append(('Mask blur', str(self.mask_blur)))
		if self.mask_crop_padding is not None:
			fields += [('Inpaint area', 'Only masked'), ('Masked area padding', str(self.mask_crop_padding))]
		return fields

	def without_sources(self) -> 'Inpaint':
		return self.model_copy(update={'init_image': b'', 'mask_image': b''})

	def violations(self, prefix: str) -> list[FieldViolation]:
		"""A stored or imported spec against the request's rules."""
		found = InpaintRequest(
			init_image=b'',
			mask_image=b'',
			strength=self.strength,
			mask_blur=self.mask_blur,
			mask_crop_padding=self.mask_crop_padding,
		).violations()
		return [violation.model_copy(update={'field': f'{prefix}.{violation.field}'}) for violation in found]

	def repaired(self) -> 'Inpaint':
		"""Damaged stored values back to their defaults (what a lenient read shows)."""
		if not self.violations(''):
			return self
		return self.model_copy(update={'strength': DEFAULT_STRENGTH, 'mask_blur': 0, 'mask_crop_padding': None})
