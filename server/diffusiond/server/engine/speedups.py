"""A job's speed options on the active pipeline for one call, taken off after it, so a job without them gives exactly
the baseline pixels after a job with them (tested). Worker thread only.

- Feature caching, through DeepCache's helper: every `deep_cache`-th UNet evaluation runs in full, the others reuse
  the deep features (everything below the first skip branch) of the last full one. DeepCache's own step counter
  looks each timestep up in `pipe.scheduler`, which is not the scheduler of a derived pipeline (img2img, a hires
  fix's second pass), so evaluations are counted here instead.
- Token merging, through tomesd: in the attention layers of the highest resolution that has attention (SD1/SD2:
  the full latent; SDXL and the tiny test model: half of it), `token_merging` of the tokens are merged before
  attention and unmerged after. tomesd draws its partitions from a generator it forks off the global one; here it
  is seeded from the job's seed, so the same request gives the same pixels.
"""

import contextlib
import itertools
from collections.abc import Iterator

import tomesd
import torch
from DeepCache import DeepCacheSDHelper
from diffusers import DiffusionPipeline

from diffusiond.server.schemas import JobSpec

_CROSS_ATTENTION = 'CrossAttn'


def _merge_depth(pipe: DiffusionPipeline) -> int:
	"""tomesd's `max_downsample`: the downsampling of the first down block with attention (1, 2, 4…)."""
	blocks = list(pipe.unet.config.down_block_types)
	first = next((index for index, name in enumerate(blocks) if _CROSS_ATTENTION in name), 0)
	return int(2**first)


@contextlib.contextmanager
def _token_merging(pipe: DiffusionPipeline, ratio: float, seed: int) -> Iterator[None]:
	tomesd.apply_patch(pipe, ratio=ratio, max_downsample=_merge_depth(pipe))
	try:
		pipe.unet._tome_info['args']['generator'] = torch.Generator(pipe.unet.device).manual_seed(seed)
		yield
	finally:
		tomesd.remove_patch(pipe)


@contextlib.contextmanager
def _deep_cache(pipe: DiffusionPipeline, interval: int) -> Iterator[None]:
	unet = pipe.unet
	own = {id(module) for module in unet.modules() if 'forward' in module.__dict__}  # e.g. accelerate's offload
	helper = DeepCacheSDHelper(pipe=pipe)
	helper.set_params(cache_interval=interval, cache_branch_id=0)
	helper.enable()
	inner = helper.function_dict['unet_forward']  # the UNet's own forward
	evaluations = itertools.count()

	def counted(*args: object, **kwargs: object) -> object:
		helper.cur_timestep = next(evaluations)
		return inner(*args, **kwargs)

	unet.forward = counted
	try:
		yield
	finally:
		helper.disable()
		for module in unet.modules():  # the class's forward again, not a bound copy of it
			if id(module) not in own:
				module.__dict__.pop('forward', None)


@contextlib.contextmanager
def speedups(pipe: DiffusionPipeline, spec: JobSpec) -> Iterator[None]:
	"""The job's feature caching and token merging on `pipe` for the `with` block."""
	with contextlib.ExitStack() as stack:
		if spec.token_merging > 0:
			stack.enter_context(_token_merging(pipe, spec.token_merging, spec.seeds[0]))
		if spec.deep_cache > 1:
			stack.enter_context(_deep_cache(pipe, spec.deep_cache))
		yield
