"""OpenAI's edit convention turned into ours: the mask's (or, without a mask, the image's own) fully transparent
pixels are the ones to edit; our masks are white where the image is repainted."""

from PIL import Image

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.images import decode_image
from diffusiond.server.tasks.sources import png


def _transparent(image: Image.Image, field: str) -> Image.Image:
	if 'A' not in image.getbands():
		raise InvalidArgumentError(
			[
				FieldViolation(
					field=field,
					description=f'{field} has no alpha channel: its fully transparent areas mark what to edit '
					'(send a PNG with transparency, or a mask that has it)',
				)
			]
		)
	return image.getchannel('A').point(lambda alpha: 255 if alpha == 0 else 0)


def edit_sources(image: bytes, mask: bytes, max_pixels: int) -> tuple[bytes, bytes]:
	"""The image as RGB PNG and our mask (blocking: call through a thread)."""
	source = decode_image(image, max_pixels, 'image')
	painted = _transparent(decode_image(mask, max_pixels, 'mask') if mask else source, 'mask' if mask else 'image')
	if painted.size != source.size:
		raise InvalidArgumentError(
			[
				FieldViolation(
					field='mask', description=f'mask is {painted.size}, the image {source.size}: make them equal'
				)
			]
		)
	return png(source.convert('RGB')), png(painted)
