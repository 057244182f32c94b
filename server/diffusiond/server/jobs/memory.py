"""Memory planned before a job runs, not discovered by an out-of-memory error. A job's working memory (beyond the
weights) peaks either in the UNet, whose self-attention at its highest resolution holds a (tokens x tokens) score
matrix per head and image (twice the images with classifier-free guidance), or in the VAE decode at full size (its
last blocks' activations, and its mid-block attention over every latent pixel). Three savers cut those peaks, turned
on in this order as far as needed: attention slicing (one head of one image at a time), VAE slicing (a batch decoded
an image at a time) and VAE tiling (decoded in tiles of the VAE's own sample size: 512 px for SD1, 1024 for SDXL). A job that does not fit with all three is refused
before it is queued, naming the largest size that would fit.

Pure arithmetic (no torch): the loop side plans from the model's family, the engine from the loaded pipeline's own
configs. The estimate is checked against measured peaks by bench/memory.py."""

from pydantic import BaseModel

from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.errors import MemoryBudgetError
from diffusiond.server.schemas import JobSpec

ATTENTION_SLICING, VAE_SLICING, VAE_TILING = 'attention slicing', 'VAE slicing', 'VAE tiling'
SAVERS = (ATTENTION_SLICING, VAE_SLICING, VAE_TILING)  # the order they are turned on
_BUFFERS = 3  # live full-size activations of a VAE up block (input, norm, conv output)
# Planned against what the device has free, a job may take this share of it: the estimate leaves out the fixed
# overhead of kernels' workspaces and the allocator (bench/memory_plan.py measures 90-400 MiB on CPU).
FREE_MARGIN = 0.8
_SCORE_COPIES = 2  # attention scores and their softmax


class Shape(BaseModel):
	"""What the estimate needs of a model."""

	heads: int  # attention heads at the UNet's highest-resolution attention level
	level: int  # that level's downsampling of the latent (SD1/SD2: 1, SDXL: 2)
	unet_channels: int  # the UNet's first block's channels
	vae_channels: int  # the VAE decoder's last block's channels (at full size)
	tile: int  # the VAE's tile in pixels (diffusers' tile_sample_min_size: its config's sample_size)
	value_bytes: int  # 4 in float32, 2 in float16/bfloat16


# By family, for the loop side (the engine reads the pipeline's configs): SD1's 8 heads at the full latent, SD2's
# 64-wide heads (5 at 320 channels), SDXL's first attention at half the latent (10 heads of 64 at 640 channels).
_FAMILIES = {
	ModelBase.SD1: (8, 1, 512),
	ModelBase.SD2: (5, 1, 768),
	ModelBase.SDXL: (10, 2, 1024),
}


def family_shape(base: ModelBase, value_bytes: int) -> Shape:
	heads, level, tile = _FAMILIES.get(base, _FAMILIES[ModelBase.SD1])
	return Shape(heads=heads, level=level, unet_channels=320, vae_channels=128, tile=tile, value_bytes=value_bytes)


class Estimate(BaseModel):
	"""A job's working memory in bytes, by phase, with and without each saver."""

	attention: int  # every head's scores of every image at once
	attention_sliced: int  # one head of one image
	unet_rest: int  # the UNet's other activations at its first block
	decode: int  # the VAE decode of the whole batch at once
	decode_sliced: int  # one image
	decode_tiled: int  # one image in tiles

	def unet(self, savers: list[str]) -> int:
		return (self.attention_sliced if ATTENTION_SLICING in savers else self.attention) + self.unet_rest

	def vae(self, savers: list[str]) -> int:
		if VAE_TILING in savers:
			return self.decode_tiled
		return self.decode_sliced if VAE_SLICING in savers else self.decode

	def peak(self, savers: list[str]) -> int:
		"""The two phases run one after the other: the larger is the job's."""
		return max(self.unet(savers), self.vae(savers))


def _decode(width: int, height: int, shape: Shape) -> int:
	"""One image's VAE decode: its last blocks at full size, and the mid-block's attention over the latent."""
	latent = (width // 8) * (height // 8)
	return shape.vae_channels * width * height * shape.value_bytes * _BUFFERS + latent * latent * 4 * _SCORE_COPIES


def estimate(width: int, height: int, images: int, guided: bool, shape: Shape) -> Estimate:
	"""`guided`: classifier-free guidance on (guidance_scale > 1), which runs every image twice through the UNet."""
	batch = images * (2 if guided else 1)
	tokens = (width // 8 // shape.level) * (height // 8 // shape.level)
	one_head = tokens * tokens * shape.value_bytes * _SCORE_COPIES
	latent = (width // 8) * (height // 8)
	one = _decode(width, height, shape)
	return Estimate(
		attention=batch * shape.heads * one_head,
		attention_sliced=one_head,
		unet_rest=batch * shape.unet_channels * latent * shape.value_bytes * 4,
		decode=images * one,
		decode_sliced=one,
		decode_tiled=_decode(min(width, shape.tile), min(height, shape.tile), shape),
	)


def savers_for(found: Estimate, budget: int, kept: list[str] | None = None) -> list[str]:
	"""The savers to turn on so that each phase fits in `budget` bytes, in order, each only where it lowers its
	phase (VAE slicing does nothing for one image); `kept`: those already on. When a phase does not fit even so,
	every saver that helps it."""
	on = list(kept or [])
	chosen: list[str] = []
	if found.unet(on) > budget and ATTENTION_SLICING not in on:
		chosen.append(ATTENTION_SLICING)
	for saver in (VAE_SLICING, VAE_TILING):
		now = found.vae(on + chosen)
		if now > budget and saver not in on and found.vae([*on, *chosen, saver]) < now:
			chosen.append(saver)
	return chosen


def largest_fitting(images: int, guided: bool, shape: Shape, budget: int) -> int:
	"""The largest square side (a multiple of 64, at least 64) that fits with every saver on; 0 when none does."""
	side = 0
	for candidate in range(64, 4097, 64):
		if estimate(candidate, candidate, images, guided, shape).peak(list(SAVERS)) > budget:
			break
		side = candidate
	return side


def _gib(count: int) -> str:
	return f'{count / 2**30:.1f} GiB'


def check_fits(spec: JobSpec, base: ModelBase, value_bytes: int, budget: int) -> None:
	"""At submission: MEMORY_BUDGET_EXCEEDED, naming the largest size that fits, for a job that would not fit in
	`budget` bytes even with every saver on (estimated from the model's family: a model of no known family is left
	to the engine's plan, which reads its configs; the job's output size, images, CFG)."""
	if base not in _FAMILIES:
		return
	width, height = spec.task.output_size(spec.width, spec.height)
	images, guided = len(spec.seeds), spec.guidance_scale > 1
	shape = family_shape(base, value_bytes)
	need = estimate(width, height, images, guided, shape).peak(list(SAVERS))
	if need <= budget:
		return
	side = largest_fitting(images, guided, shape, budget)
	fits = f'at most about {side}x{side} fits' if side else 'no size fits; lower num_images'
	raise MemoryBudgetError(
		f'a {width}x{height} job of {images} image(s) needs about {_gib(need)} of working memory even with '
		f"{', '.join(SAVERS)}, and a job may use {_gib(budget)} (device.memory_budget_bytes, else the device's "
		f'memory): {fits}',
		metadata={'max_size': f'{side}x{side}', 'needed_bytes': str(need), 'budget_bytes': str(budget)},
	)
