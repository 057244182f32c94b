"""An image model run on overlapping tiles, the overlaps blended with linear ramps that leave out each tile's outer
border, so memory stays bounded by the tile size at any image size. One tile (an image no larger than a tile) is the model's own output exactly."""

from collections.abc import Callable

import torch

from diffusiond.server.tasks.upscale import spans

ImageModel = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, h, w) in [0, 1] -> (1, 3, h*s, w*s)


def _ramp(length: int, fade: int, lead: bool, trail: bool) -> torch.Tensor:
	"""Weights along one edge of a tile: 0 over the outer quarter of an overlap with a neighbour (where a tile's own
	zero padding still shows: its neighbour is far from its own edge there), rising over the middle half, 1
	elsewhere. Two neighbours' weights never both vanish, so every pixel is covered."""
	weights = torch.ones(length)
	fade = min(fade, length // 2)
	if fade:
		margin = fade // 4
		rise = ((torch.arange(fade, dtype=torch.float32) + 1 - margin) / (fade - 2 * margin + 1)).clamp(0, 1)
		if lead:
			weights[:fade] = rise
		if trail:
			weights[length - fade :] = rise.flip(0)
	return weights


def run_tiled(
	model: ImageModel, image: torch.Tensor, scale: int, tile: int, overlap: int, on_tile: Callable[[], None]
) -> torch.Tensor:
	"""`model` over `image` (1, 3, h, w) on tiles of `tile` pixels sharing `overlap`; `on_tile` after each tile
	(it may raise to stop). The result is float32 on the CPU."""
	_, _, height, width = image.shape
	rows, columns = spans(height, tile, overlap), spans(width, tile, overlap)
	if len(rows) == 1 and len(columns) == 1:
		result = model(image).float().cpu()
		on_tile()
		return result
	out = torch.zeros(1, 3, height * scale, width * scale)
	weight = torch.zeros(1, 1, height * scale, width * scale)
	tile_h, tile_w = min(tile, height), min(tile, width)
	for top in rows:
		for left in columns:
			piece = model(image[:, :, top : top + tile_h, left : left + tile_w]).float().cpu()
			ys = _ramp(tile_h * scale, overlap * scale, top > 0, top + tile_h < height)
			xs = _ramp(tile_w * scale, overlap * scale, left > 0, left + tile_w < width)
			mask = (ys[:, None] * xs[None, :])[None, None]
			window = (slice(None), slice(None), slice(top * scale, (top + tile_h) * scale))
			region = (*window, slice(left * scale, (left + tile_w) * scale))
			out[region] += piece * mask
			weight[region] += mask
			on_tile()
	return out / weight
