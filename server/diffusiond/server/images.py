"""Decoding images that come from outside (requests, archives) safely: an allowlist and a pixel cap.

The size is read from the header before any pixel is decoded, so a decompression bomb (a tiny file
that claims a huge canvas) is refused without allocating its canvas.
"""

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from diffusiond.server.errors import FieldViolation, ImageTooLargeError, InvalidArgumentError

ALLOWED_FORMATS = frozenset({'PNG', 'JPEG', 'WEBP'})


def decode_image(source: bytes | Path, max_pixels: int, field: str) -> Image.Image:
	"""The decoded RGB(A) image; INVALID_ARGUMENT when it is no PNG/JPEG/WebP, IMAGE_TOO_LARGE over the cap."""

	def invalid(why: str) -> InvalidArgumentError:
		return InvalidArgumentError([FieldViolation(field=field, description=f'{field} {why}')])

	def too_large(size: str) -> ImageTooLargeError:
		return ImageTooLargeError(
			f'{field} is {size}; at most {max_pixels} pixels are accepted', metadata={'max_pixels': str(max_pixels)}
		)

	stream = io.BytesIO(source) if isinstance(source, bytes) else source
	try:
		with warnings.catch_warnings():
			warnings.simplefilter('error', Image.DecompressionBombWarning)
			image = Image.open(stream, formats=sorted(ALLOWED_FORMATS))
			width, height = image.size
			if width * height > max_pixels:
				raise too_large(f'{width}x{height} ({width * height} pixels)')
			image.load()
	except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # PIL's own, larger cap
		raise too_large(f'far too large: {exc}') from None
	except UnidentifiedImageError:
		raise invalid('is not a readable PNG, JPEG or WebP image') from None
	except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
		raise invalid(f'is a damaged image ({exc})') from None
	return image


def thumbnail_jpeg(data: bytes, size: int, max_pixels: int, field: str) -> bytes:
	"""A JPEG of the image `data` that fits in `size` x `size`."""
	image = decode_image(data, max_pixels, field)
	image.thumbnail((size, size))
	buffer = io.BytesIO()
	image.convert('RGB').save(buffer, format='JPEG', quality=85)
	return buffer.getvalue()
