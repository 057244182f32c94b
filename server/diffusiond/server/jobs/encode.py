"""Encodes PIL images to PNG, JPEG or WebP bytes with their metadata. Runs on the worker, never on the loop.

PNG: A1111's `parameters` text chunk and our `diffusiond` JSON chunk. JPEG / WebP: the parameters text in
EXIF UserComment (UNICODE, as A1111 writes it with piexif) and our JSON in EXIF MakerNote (`diffusiond\0`
then UTF-8), where viewers do not show it.
"""

import io

from PIL import ExifTags, Image, PngImagePlugin

from diffusiond.server.jobs.infotext import ImageMetadata
from diffusiond.server.schemas import ImageFormat

_PIL_FORMATS = {ImageFormat.PNG: 'PNG', ImageFormat.JPEG: 'JPEG', ImageFormat.WEBP: 'WEBP'}
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
JSON_CHUNK = 'diffusiond'
MAKER_PREFIX = b'diffusiond\x00'


def user_comment(text: str) -> bytes:
	return b'UNICODE\x00' + text.encode('utf-16-be')


def encode_image(
	image: Image.Image, fmt: ImageFormat, quality: int, metadata: ImageMetadata | None = None, png_level: int = 4
) -> bytes:
	buffer = io.BytesIO()
	if fmt is ImageFormat.PNG:
		info = PngImagePlugin.PngInfo()
		if metadata is not None:
			info.add_itxt('parameters', metadata.parameters)
			info.add_itxt(JSON_CHUNK, metadata.json_text)
		image.save(buffer, format='PNG', compress_level=png_level, pnginfo=info)
	else:
		exif = Image.Exif()
		if metadata is not None:
			tags = exif.get_ifd(ExifTags.IFD.Exif)
			tags[USER_COMMENT] = user_comment(metadata.parameters)
			tags[MAKER_NOTE] = MAKER_PREFIX + metadata.json_text.encode()
		image.convert('RGB').save(buffer, format=_PIL_FORMATS[fmt], quality=quality, exif=exif)
	return buffer.getvalue()
