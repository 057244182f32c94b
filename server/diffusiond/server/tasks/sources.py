"""img2img and inpainting sources: decoded through the image guard, sized to the job, kept as PNG bytes.

A task spec carries its sources as PNG bytes at exactly the job's size (the mask thresholded and blurred),
so a spec is plain data that can be stored and sent; the engine decodes them for the pipeline.
"""

import io

from PIL import Image, ImageFilter
from pydantic import BaseModel, ConfigDict

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.images import decode_image

MULTIPLE = 8
MASK_THRESHOLD = 128  # mask pixels at or above it are repainted; the pipeline binarizes at the same point


class Sources(BaseModel):
	"""The decoded init image (RGB) and inpainting mask (grayscale)."""

	model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

	init: Image.Image
	mask: Image.Image | None = None

	@property
	def size(self) -> tuple[int, int]:
		"""The size a job takes when the request names none: the init image's, rounded down to a multiple of 8."""
		return self.init.width // MULTIPLE * MULTIPLE, self.init.height // MULTIPLE * MULTIPLE


def decode(init_image: bytes, mask_image: bytes | None, max_pixels: int) -> Sources:
	"""The sources as the request sent them (through the image guard); the mask must match the image's size."""
	image = decode_image(init_image, max_pixels, 'init_image').convert('RGB')
	mask = decode_image(mask_image, max_pixels, 'mask_image').convert('L') if mask_image else None
	if mask is not None and mask.size != image.size:
		why = f'mask_image is {mask.width}x{mask.height} but init_image is {image.width}x{image.height}; '
		raise InvalidArgumentError([FieldViolation(field='mask_image', description=why + 'send them at one size')])
	return Sources(init=image, mask=mask)


def _sized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
	return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def png(image: Image.Image) -> bytes:
	buffer = io.BytesIO()
	image.save(buffer, format='PNG', compress_level=1)
	return buffer.getvalue()


def fitted_init(sources: Sources, width: int, height: int) -> bytes:
	"""The init image at exactly width x height (Lanczos), as PNG."""
	return png(_sized(sources.init, (width, height)))


def fitted_mask(sources: Sources, width: int, height: int, blur: int) -> bytes:
	"""The mask at width x height, thresholded to 0/255, then blurred by `blur` pixels (the pipeline thresholds it
	again; the paste-back uses the soft edge), as PNG."""
	if sources.mask is None:
		raise ValueError('an inpainting task has a mask')
	mask = _sized(sources.mask, (width, height)).point(lambda value: 255 if value >= MASK_THRESHOLD else 0)
	return png(mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask)


def image_of(data: bytes, mode: str) -> Image.Image:
	"""A source of a task spec, decoded (our own PNG bytes, already checked and sized)."""
	image = Image.open(io.BytesIO(data))
	image.load()
	return image.convert(mode)
