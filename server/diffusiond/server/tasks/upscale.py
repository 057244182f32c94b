"""Upscaling (UpscaleImage, and a hires fix's upscaler from the folder): what is asked, checked, and the plan the
engine runs: the passes of a model upscaler (run again until the image is at least the asked size, then resized
to it exactly with Lanczos, as A1111 does) and the overlapping tiles of each pass."""

import math

from pydantic import BaseModel, ConfigDict

from diffusiond.server.errors import FieldViolation
from diffusiond.server.jobs.generation_rules import quality_problem
from diffusiond.server.schemas import ImageFormat
from diffusiond.server.tasks.upscaler_file import UpscalerFile

BUILTIN_UPSCALERS = ('Lanczos', 'Nearest')  # Pillow's resampling; need no file
DEFAULT_UPSCALER = 'Lanczos'
BUILTIN_SCALE = 2.0  # a built-in upscaler's scale when none is asked
MAX_SCALE = 8.0
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
MIN_TILE, MAX_TILE = 32, 2048
MAX_PASSES = 4  # a model upscaler run again at most this often to reach the asked scale


class UpscaleRequest(BaseModel):
	"""UpscaleImage as asked (before the upscaler is resolved)."""

	model_config = ConfigDict(frozen=True)

	image: bytes
	upscaler: str = ''  # '' = DEFAULT_UPSCALER
	scale: float | None = None  # None = the upscaler's own
	tile_size: int | None = None
	tile_overlap: int | None = None
	output_format: ImageFormat = ImageFormat.PNG
	quality: int | None = None
	priority: bool = False

	def violations(self) -> list[FieldViolation]:
		found = []
		if not self.image:
			found.append(FieldViolation(field='image', description='image is required: the PNG, JPEG or WebP bytes'))
		if self.scale is not None and (not math.isfinite(self.scale) or not 1 < self.scale <= MAX_SCALE):
			found.append(
				FieldViolation(
					field='scale', description=f'scale must be above 1 and at most {MAX_SCALE:g}, got {self.scale}'
				)
			)
		tile = self.tile_size if self.tile_size is not None else DEFAULT_TILE
		if not MIN_TILE <= tile <= MAX_TILE:
			found.append(
				FieldViolation(field='tile_size', description=f'tile_size must be {MIN_TILE}..{MAX_TILE}, got {tile}')
			)
		overlap = self.tile_overlap if self.tile_overlap is not None else min(DEFAULT_OVERLAP, tile // 2)
		if not 0 <= overlap <= tile // 2:
			found.append(
				FieldViolation(
					field='tile_overlap',
					description=f'tile_overlap must be 0..tile_size/2 ({tile // 2}), got {overlap}',
				)
			)
		if (problem := quality_problem(self.quality)) is not None:
			found.append(FieldViolation(field='quality', description=problem))
		return found

	def tiles(self) -> tuple[int, int]:
		tile = self.tile_size if self.tile_size is not None else DEFAULT_TILE
		return tile, self.tile_overlap if self.tile_overlap is not None else min(DEFAULT_OVERLAP, tile // 2)


def target_size(width: int, height: int, scale: float) -> tuple[int, int]:
	return max(1, round(width * scale)), max(1, round(height * scale))


def passes(width: int, height: int, target: tuple[int, int], model_scale: int) -> list[tuple[int, int]]:
	"""The input size of each run of a model upscaler: again until the image is at least `target` (at most
	MAX_PASSES runs); once for a model that keeps the size (a restoration model)."""
	sizes: list[tuple[int, int]] = []
	while model_scale > 1 and (width < target[0] or height < target[1]) and len(sizes) < MAX_PASSES:
		sizes.append((width, height))
		width, height = width * model_scale, height * model_scale
	return sizes or [(width, height)]


def spans(length: int, tile: int, overlap: int) -> list[int]:
	"""Where tiles of `tile` pixels start along one edge of `length`, `overlap` pixels shared by neighbours; the
	last one ends at the edge."""
	if length <= tile:
		return [0]
	stride = tile - overlap
	starts = list(range(0, length - tile, stride))
	return [*starts, length - tile]


def tile_count(sizes: list[tuple[int, int]], tile: int, overlap: int) -> int:
	return sum(len(spans(width, tile, overlap)) * len(spans(height, tile, overlap)) for width, height in sizes)


class UpscaleSpec(BaseModel):
	"""An upscale with everything resolved: what the worker runs."""

	model_config = ConfigDict(frozen=True)

	image: bytes  # the source, as sent (guarded)
	source_width: int
	source_height: int
	upscaler: str  # the name as the results show it
	file: UpscalerFile | None  # None = a built-in upscaler
	width: int  # the result's size
	height: int
	tile_size: int
	tile_overlap: int
	output_format: ImageFormat
	quality: int

	@property
	def scale(self) -> float:
		return self.width / self.source_width

	def plan(self) -> list[tuple[int, int]]:
		"""The model's runs (input sizes); none for a built-in upscaler."""
		if self.file is None:
			return []
		return passes(self.source_width, self.source_height, (self.width, self.height), self.file.scale)

	@property
	def progress_steps(self) -> int:
		"""Tiles in all (1 for a built-in upscaler: one resize)."""
		return tile_count(self.plan(), self.tile_size, self.tile_overlap) if self.file is not None else 1
