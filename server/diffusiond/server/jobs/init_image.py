"""img2img and inpainting sources: decoded through the image guard, sized to the job (see GenerateRequest)."""

from PIL import Image, ImageFilter
from pydantic import BaseModel, ConfigDict

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.images import decode_image
from diffusiond.server.schemas import GenerateParams

_MULTIPLE = 8
MASK_THRESHOLD = 128  # mask pixels at or above it are repainted; the pipeline binarizes at the same point


class Sources(BaseModel):
	"""The decoded init image (RGB) and inpainting mask (grayscale), when the request has them."""

	model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

	init: Image.Image | None = None
	mask: Image.Image | None = None


def decode_sources(params: GenerateParams, max_pixels: int) -> tuple[GenerateParams, Sources]:
	"""The params with width/height defaulted to the init image's size (rounded down to a multiple of 8)."""
	if not params.init_image:
		return params, Sources()
	image = decode_image(params.init_image, max_pixels, 'init_image').convert('RGB')
	mask = decode_image(params.mask_image, max_pixels, 'mask_image').convert('L') if params.mask_image else None
	if mask is not None and mask.size != image.size:
		why = f'mask_image is {mask.width}x{mask.height} but init_image is {image.width}x{image.height}; '
		raise InvalidArgumentError([FieldViolation(field='mask_image', description=why + 'send them at one size')])
	width = params.width if params.width is not None else image.width // _MULTIPLE * _MULTIPLE
	height = params.height if params.height is not None else image.height // _MULTIPLE * _MULTIPLE
	return params.model_copy(update={'width': width, 'height': height}), Sources(init=image, mask=mask)


def fit(sources: Sources, width: int, height: int, blur: int = 0) -> Sources:
	"""The sources at exactly width x height (Lanczos), as the pipeline needs; the mask thresholded to 0/255,
	then blurred by `blur` pixels (the pipeline thresholds it again; the paste-back uses the soft edge)."""
	size = (width, height)

	def sized(image: Image.Image) -> Image.Image:
		return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)

	init = sized(sources.init) if sources.init is not None else None
	if sources.mask is None:
		return Sources(init=init)
	mask = sized(sources.mask).point(lambda value: 255 if value >= MASK_THRESHOLD else 0)
	return Sources(init=init, mask=mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask)
