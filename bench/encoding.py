"""Image encoding cost at large sizes: PNG at compression levels 0, 4 (default), 9, and JPEG / WebP.

The image is a photo-like 1024x1024 picture (smooth gradients plus fine noise), encoded the way the
worker does it (`encode_image`); the table gives the median time and the size of each.
"""

import statistics
import time

import numpy as np
from PIL import Image

from diffusiond.server.jobs.encode import encode_image
from diffusiond.server.schemas import ImageFormat

SIZE = 1024


def _picture() -> Image.Image:
	y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
	smooth = np.stack([np.sin(x * 6 + y * 2), np.cos(y * 5 - x), np.sin((x + y) * 4)], axis=-1) * 100 + 128
	noise = np.random.default_rng(0).normal(0, 6, (SIZE, SIZE, 3))
	return Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8), 'RGB')


def run_encoding(repeats: int = 5) -> list[tuple[str, str]]:
	picture = _picture()
	cases = [
		*((f'PNG level {level}', ImageFormat.PNG, level) for level in (0, 4, 9)),
		('JPEG quality 90', ImageFormat.JPEG, 4),
		('WebP quality 90', ImageFormat.WEBP, 4),
	]
	rows = []
	for name, fmt, level in cases:
		times = []
		for _ in range(repeats):
			start = time.perf_counter()
			data = encode_image(picture, fmt, 90, png_level=level)
			times.append(time.perf_counter() - start)
		rows.append(
			(
				f'encode {SIZE}² {name}: median / size',
				f'{statistics.median(times) * 1000:.0f} ms / {len(data) >> 10} KiB',
			)
		)
	return rows
