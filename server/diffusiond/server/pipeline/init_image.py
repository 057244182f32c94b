"""img2img sources: decoded through the image guard, sized to the job (documented in GenerateRequest)."""

from PIL import Image

from diffusiond.server.images import decode_image
from diffusiond.server.schemas import GenerateParams

_MULTIPLE = 8


def decode_init(params: GenerateParams, max_pixels: int) -> tuple[GenerateParams, Image.Image | None]:
	"""The params with width/height defaulted to the init image's size (rounded down to a multiple of 8)."""
	if not params.init_image:
		return params, None
	image = decode_image(params.init_image, max_pixels, 'init_image').convert('RGB')
	width = params.width if params.width is not None else image.width // _MULTIPLE * _MULTIPLE
	height = params.height if params.height is not None else image.height // _MULTIPLE * _MULTIPLE
	return params.model_copy(update={'width': width, 'height': height}), image


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
	"""`image` at exactly width x height (Lanczos), as the pipeline needs."""
	return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)
