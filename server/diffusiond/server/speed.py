"""The speed options of a job (feature caching, token merging, fast decode): their ranges and what they need, checked
on the loop side; the engine applies them (engine/speedups.py, engine/preview.py)."""

import math
from pathlib import Path

from diffusiond.server.catalog.schemas import ModelBase

MAX_DEEP_CACHE = 10
TINY_DECODERS = {ModelBase.SDXL: 'taesdxl'}  # folder names under previewers/; every other base: 'taesd'
MAX_TOKEN_MERGING = 0.75


def speed_problems(deep_cache: int | None, token_merging: float | None) -> list[tuple[str, str]]:
	"""(field, why) for speed options out of range."""
	found = []
	if deep_cache is not None and not 0 <= deep_cache <= MAX_DEEP_CACHE:
		found.append(
			(
				'deep_cache_interval',
				f'deep_cache_interval is 2..{MAX_DEEP_CACHE} (0 or 1 = off), got {deep_cache}',
			)
		)
	if token_merging is not None and not (math.isfinite(token_merging) and 0 <= token_merging <= MAX_TOKEN_MERGING):
		found.append(
			(
				'token_merging_ratio',
				f'token_merging_ratio is 0..{MAX_TOKEN_MERGING} (0 = off), got {token_merging}',
			)
		)
	return found


def tiny_decoder(previewers: Path, base: ModelBase) -> Path | None:
	"""The tiny autoencoder (TAESD) folder for `base` models, when it is there."""
	folder = previewers / TINY_DECODERS.get(base, 'taesd')
	return folder if (folder / 'config.json').is_file() else None
