"""A job's VAE: a file from the vaes folder in place of the model's own, and A1111's automatic VAE precision.

A VAE file (the LDM layout of A1111's `models/VAE`, or diffusers') is loaded into a VAE built from the model's
own VAE config (the scaling factor is the model's: SD1/SD2 and SDXL VAEs share their shapes), converted with
diffusers' single-file converter, strict: a file that does not fit is refused. Loaded VAEs are kept (a few);
switching is a pointer change on the pipeline (and a move to the device). A job without one gets the model's
own VAE back, exactly.

In float16 a VAE can overflow into NaNs (a black image); the decode is then run again in float32, as A1111's
automatic VAE precision does, and the job is told (`notices`).
"""

from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, DiffusionPipeline
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from diffusers.models.autoencoders.vae import DecoderOutput

from diffusiond.server.engine.tensor_files import Tensors, read_tensors
from diffusiond.server.errors import AssetNotApplicableError
from diffusiond.server.schemas import AssetSpec

_KEPT = 2  # VAEs kept loaded (about 160 MiB each in float16)
_SKIPPED = ('loss.', 'model_ema.')  # training leftovers in some VAE files (A1111 drops them too)
UPCAST_NOTICE = 'the VAE gave NaNs in {dtype}; the images were decoded again in float32 (automatic VAE precision)'


def _state(tensors: Tensors, config: dict[str, object]) -> Tensors:
	tensors = {key: value for key, value in tensors.items() if not key.startswith(_SKIPPED)}
	bare = [key.removeprefix('first_stage_model.').removeprefix('vae.') for key in tensors]
	if any(key.startswith(('decoder.mid.', 'encoder.down.')) for key in bare):  # the LDM layout
		return dict(convert_ldm_vae_checkpoint(tensors, config))
	for prefix in ('first_stage_model.', 'vae.'):
		if all(key.startswith(prefix) for key in tensors):
			return {key.removeprefix(prefix): value for key, value in tensors.items()}
	return tensors


def load_vae(spec: AssetSpec, own: AutoencoderKL, allow_pickle: bool) -> AutoencoderKL:
	"""The file's weights in a VAE shaped as `own` (its config), in `own`'s dtype, on the CPU."""
	config = dict(own.config)
	vae = AutoencoderKL.from_config(config)
	try:
		vae.load_state_dict(_state(read_tensors(spec.path, allow_pickle), config), strict=True)
	except (RuntimeError, KeyError, ValueError) as exc:
		raise AssetNotApplicableError(
			f"VAE {spec.name!r} does not fit this model's VAE: {str(exc)[:300]}", metadata={'vae': spec.name}
		) from None
	return (vae if own.dtype == vae.dtype else vae.to(own.dtype)).eval()


class VaeSwitch:
	"""The loaded VAE files, per model (the model's config shapes them); worker thread only."""

	def __init__(self, allow_pickle: bool) -> None:
		self._allow_pickle = allow_pickle
		self._loaded: OrderedDict[tuple[str, str], AutoencoderKL] = OrderedDict()

	def use(self, pipe: DiffusionPipeline, own: AutoencoderKL, model_key: str, spec: AssetSpec | None) -> None:
		"""Puts the job's VAE (or the model's own) on `pipe`, on the device the pipeline's VAE was on."""
		wanted = own if spec is None else self._get(own, model_key, spec)
		current: AutoencoderKL = pipe.vae
		if current is wanted:
			return
		device = current.device
		pipe.vae = wanted.to(device)
		current.to('cpu')

	def _get(self, own: AutoencoderKL, model_key: str, spec: AssetSpec) -> AutoencoderKL:
		key = (model_key, spec.key)
		found = self._loaded.get(key)
		if found is None:
			found = self._loaded[key] = load_vae(spec, own, self._allow_pickle)
			while len(self._loaded) > _KEPT:
				self._loaded.popitem(last=False)
		self._loaded.move_to_end(key)
		return found

	def forget(self, model_key: str) -> None:
		for key in [key for key in self._loaded if key[0] == model_key]:
			del self._loaded[key]


@contextmanager
def watched_decode(
	vae: AutoencoderKL, notices: list[str], before: Callable[[], None], fast: AutoencoderTiny | None = None
) -> Iterator[None]:
	"""While the pipeline runs: `before` is called as each decode starts (the DECODING stage), `fast` (a tiny
	autoencoder, fast_decode) decodes instead of the VAE, and a float16/bfloat16 decode that gives NaNs is done
	again by the VAE in float32."""
	dtype = vae.dtype
	decode = vae.decode
	scaling = float(vae.config.scaling_factor)

	def first(z: torch.Tensor, *args: object, **kwargs: object) -> DecoderOutput | tuple[torch.Tensor]:
		if fast is None:
			return decode(z, *args, **kwargs)
		# the pipeline divided the latents by the VAE's scaling factor; the tiny one takes them as the UNet made them
		made: DecoderOutput | tuple[torch.Tensor] = fast.decode(
			(z * scaling).to(fast.device, fast.dtype), *args, **kwargs
		)
		return made

	def guarded(z: torch.Tensor, *args: object, **kwargs: object) -> DecoderOutput | tuple[torch.Tensor]:
		before()
		out = first(z, *args, **kwargs)
		sample = out[0] if isinstance(out, tuple) else out.sample
		if dtype == torch.float32 or not torch.isnan(sample).any():
			return out
		vae.to(torch.float32)
		try:
			again = decode(z.float(), *args, **kwargs)
		finally:
			vae.to(dtype)
		notice = UPCAST_NOTICE.format(dtype=str(dtype).removeprefix('torch.'))
		if notice not in notices:
			notices.append(notice)
		fixed = (again[0] if isinstance(again, tuple) else again.sample).to(dtype)
		return (fixed,) if isinstance(out, tuple) else DecoderOutput(sample=fixed)

	vae.decode = guarded
	try:
		yield
	finally:
		del vae.decode
