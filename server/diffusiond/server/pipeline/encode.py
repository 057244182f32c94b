"""Encodes PIL images to PNG, JPEG or WebP bytes. Runs on a worker thread, never on the event loop."""

import io

from PIL import Image

from diffusiond.server.schemas import ImageFormat

_PIL_FORMATS = {ImageFormat.PNG: 'PNG', ImageFormat.JPEG: 'JPEG', ImageFormat.WEBP: 'WEBP'}


def encode_image(image: Image.Image, fmt: ImageFormat, quality: int) -> bytes:
	buffer = io.BytesIO()
	if fmt is ImageFormat.PNG:
		image.save(buffer, format='PNG', compress_level=4)
	else:
		image.convert('RGB').save(buffer, format=_PIL_FORMATS[fmt], quality=quality)
	return buffer.getvalue()
