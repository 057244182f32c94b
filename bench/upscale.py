"""Upscaling: 512² to 1024² through the engine's upscaler code (one tile, then 256-pixel tiles) against spandrel's own
call on the whole image, and the built-in Lanczos against Pillow's resize; a Real-ESRGAN Compact-shaped model
(32 features, 8 convolutions, x2) with random weights, on the CPU."""

import tempfile
from pathlib import Path

import numpy
import spandrel
import torch
from PIL import Image
from safetensors.torch import save_file

from bench.timing import median_seconds
from diffusiond.server.engine.upscalers import Upscalers, resize, to_image, to_tensor
from diffusiond.server.tasks.upscale import tile_count
from diffusiond.server.tasks.upscaler_file import UpscalerFile
from tests.upscaler_files import compact_x2


def run_upscale(repeats: int = 3, side: int = 512) -> list[tuple[str, str]]:
	source = Image.fromarray(numpy.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=numpy.uint8))
	target = (2 * side, 2 * side)
	with tempfile.TemporaryDirectory() as folder:
		path = Path(folder) / 'compact.safetensors'
		save_file(compact_x2(0, features=32, convs=8), path)
		file = UpscalerFile(id='b', name='compact', path=str(path), key='b', scale=2, architecture='Compact')
		ours = Upscalers(torch.device('cpu'), torch.float32)
		descriptor = spandrel.ModelLoader().load_from_file(str(path)).eval()

		def direct() -> Image.Image:
			with torch.inference_mode():
				return to_image(descriptor(to_tensor(source)))

		def one_tile() -> Image.Image:
			return ours.upscale(source, file, target, (side, 32), lambda: None)

		def tiled() -> Image.Image:
			return ours.upscale(source, file, target, (256, 32), lambda: None)

		assert numpy.array_equal(numpy.asarray(one_tile()), numpy.asarray(direct())), 'one tile is the direct call'
		theirs = median_seconds(direct, repeats)
		whole, tiles = median_seconds(one_tile, repeats), median_seconds(tiled, repeats)
		difference = numpy.abs(numpy.asarray(tiled(), dtype=int) - numpy.asarray(direct(), dtype=int))
	pil = median_seconds(lambda: source.resize(target, Image.Resampling.LANCZOS), repeats)
	lanczos = median_seconds(lambda: resize(source, target), repeats)
	count = tile_count([(side, side)], 256, 32)
	return [
		(f'upscale {side}²→{2 * side}² model, spandrel direct (s)', f'{theirs:.3f}'),
		('upscale model one tile ÷ spandrel direct', f'{whole / theirs:.2f}'),
		(f'upscale model {count} tiles of 256 (overlap 32) ÷ direct', f'{tiles / theirs:.2f}'),
		('upscale tiled vs whole: mean / max |Δ| (of 255)', f'{difference.mean():.3f} / {difference.max()}'),
		('upscale Lanczos built-in ÷ Pillow resize', f'{lanczos / pil:.2f}'),
	]


if __name__ == '__main__':
	for name, value in run_upscale():
		print(f'{name:<60} {value:>14}')
