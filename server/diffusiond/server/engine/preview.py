"""Live previews of the first image of a job, as small JPEGs, from the latents at a step.

Two ways, chosen per model family:
- a tiny autoencoder (TAESD) when its diffusers folder is in `<data_dir>/previewers/` (`taesd` for
  SD1/SD2, `taesdxl` for SDXL; safetensors only): a real decode at full size, a few ms on a GPU;
- otherwise the latents projected to RGB with fixed per-base factors (the least-squares fit of RGB to
  the VAE's latent channels that ComfyUI and A1111 use for "latent2rgb"), at twice the latent size.
  Another family with 4 latent channels uses the SD1 factors; other channel counts get no preview.
"""

import io
import logging
from pathlib import Path
from typing import Protocol

import torch
from diffusers import AutoencoderTiny
from PIL import Image

from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.errors import FailedPreconditionError
from diffusiond.server.speed import tiny_decoder

log = logging.getLogger(__name__)

_SD1 = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))
_SDXL = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188))
_SDXL_BIAS = (0.1084, -0.0175, -0.0011)
_QUALITY = 70
_SCALE = 2  # latent2rgb previews are twice the latent size: 128x128 for a 512x512 image


class Previewer(Protocol):
	def jpeg(self, latents: torch.Tensor) -> tuple[bytes, int, int] | None:
		"""The first image of `latents` (batch, channels, h, w) as (JPEG, width, height); None if unsupported."""
		...


def _jpeg(image: Image.Image) -> tuple[bytes, int, int]:
	buffer = io.BytesIO()
	image.save(buffer, format='JPEG', quality=_QUALITY)
	return buffer.getvalue(), image.width, image.height


class LatentPreview:
	"""Projects latents of one model family to RGB with fixed factors."""

	def __init__(self, base: ModelBase) -> None:
		sdxl = base is ModelBase.SDXL
		self._factors = torch.tensor(_SDXL if sdxl else _SD1)
		self._bias = torch.tensor(_SDXL_BIAS if sdxl else (0.0, 0.0, 0.0))

	def jpeg(self, latents: torch.Tensor) -> tuple[bytes, int, int] | None:
		first = latents[0].detach().float().cpu()
		if first.shape[0] != self._factors.shape[0]:
			return None
		rgb = torch.einsum('chw,cr->hwr', first, self._factors) + self._bias
		pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
		image = Image.fromarray(pixels, 'RGB')
		return _jpeg(image.resize((image.width * _SCALE, image.height * _SCALE), Image.Resampling.BILINEAR))


class TinyDecoderPreview:
	"""Decodes latents with a TAESD-style tiny autoencoder (on the pipeline's device and dtype)."""

	def __init__(self, decoder: AutoencoderTiny) -> None:
		self._decoder = decoder

	def jpeg(self, latents: torch.Tensor) -> tuple[bytes, int, int] | None:
		if latents.shape[1] != self._decoder.config.latent_channels:
			return None
		with torch.inference_mode():
			first = latents[:1].to(self._decoder.device, self._decoder.dtype)
			decoded = self._decoder.decode(first).sample[0].float()
		pixels = ((decoded.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
		return _jpeg(Image.fromarray(pixels, 'RGB'))


class Previewers:
	"""One previewer per model family: the tiny decoder found in `folder`, else latent2rgb. Worker thread only.

	`mode` is the device.preview_decoder setting: 'taesd', 'latent2rgb', or 'auto' (taesd off the CPU)."""

	def __init__(self, folder: Path | None, device: torch.device, dtype: torch.dtype, mode: str = 'auto') -> None:
		use_tiny = mode == 'taesd' or (mode == 'auto' and device.type != 'cpu')
		self._folder = folder if use_tiny else None
		self._device = device
		self._dtype = dtype
		self._made: dict[ModelBase, Previewer] = {}

	def get(self, base: ModelBase) -> Previewer:
		if base not in self._made:
			self._made[base] = self._make(base)
		return self._made[base]

	def _make(self, base: ModelBase) -> Previewer:
		path = tiny_decoder(self._folder, base) if self._folder is not None else None
		if path is None:
			return LatentPreview(base)
		try:
			decoder = load_tiny_decoder(path, self._device, self._dtype)
		except (OSError, ValueError, RuntimeError) as exc:
			log.warning('previews of %s models use latent2rgb: %s could not be loaded (%s)', base.value, path, exc)
			return LatentPreview(base)
		log.info('previews of %s models are decoded with %s', base.value, path)
		return TinyDecoderPreview(decoder)


def load_tiny_decoder(path: Path, device: torch.device, dtype: torch.dtype) -> AutoencoderTiny:
	decoder: AutoencoderTiny = AutoencoderTiny.from_pretrained(
		str(path), torch_dtype=dtype, use_safetensors=True, local_files_only=True
	).to(device)
	return decoder


class TinyDecoders:
	"""The tiny autoencoders that decode final images for `fast_decode` jobs (whatever the preview setting), one per
	model family, loaded on first use. Worker thread only."""

	def __init__(self, folder: Path | None, device: torch.device, dtype: torch.dtype) -> None:
		self._folder = folder
		self._device = device
		self._dtype = dtype
		self._made: dict[ModelBase, AutoencoderTiny] = {}

	def get(self, base: ModelBase) -> AutoencoderTiny:
		"""FAILED_PRECONDITION when its folder is missing or does not load (intake checked it was there)."""
		if base not in self._made:
			path = tiny_decoder(self._folder, base) if self._folder is not None else None
			if path is None:
				raise FailedPreconditionError(
					f'fast_decode needs a tiny autoencoder for {base.value} models in previewers/'
				)
			try:
				self._made[base] = load_tiny_decoder(path, self._device, self._dtype)
			except (OSError, ValueError, RuntimeError) as exc:
				raise FailedPreconditionError(f'the tiny autoencoder {path} could not be loaded: {exc}') from exc
		return self._made[base]
