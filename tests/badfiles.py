"""Hostile files for the input checks: image bombs and broken images, broken safetensors."""

import io
import json
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
	return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
	"""A few hundred bytes of PNG that claim a width x height canvas (decoding it would need gigabytes)."""
	header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
	rows = zlib.compress(b'\0' * 1024, 9)
	return b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', header) + _chunk(b'IDAT', rows) + _chunk(b'IEND', b'')


def png(width: int = 32, height: int = 32) -> bytes:
	buffer = io.BytesIO()
	Image.new('RGB', (width, height), (200, 30, 30)).save(buffer, format='PNG')
	return buffer.getvalue()


def gif() -> bytes:
	buffer = io.BytesIO()
	Image.new('RGB', (8, 8)).save(buffer, format='GIF')
	return buffer.getvalue()


def safetensors_with_huge_header() -> bytes:
	"""Declares a 2**62-byte header: a reader that trusts it tries to allocate it."""
	return struct.pack('<Q', 2**62) + b'{}'


def truncated_safetensors() -> bytes:
	header = json.dumps({'w': {'dtype': 'F32', 'shape': [1024, 1024], 'data_offsets': [0, 4 * 1024 * 1024]}}).encode()
	return struct.pack('<Q', len(header)) + header + b'\0' * 100
