"""Cheap live previews: the latents projected to RGB with fixed per-base factors, as a small JPEG.

The factors are the least-squares fit of RGB to the VAE's latent channels that ComfyUI and A1111 use for
their "latent2rgb" previews. A model of another family with 4 latent channels uses the SD1 factors;
other channel counts get no preview.
"""

import io

import torch
from PIL import Image

from diffusiond.server.catalog.schemas import ModelBase

_SD1 = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))
_SDXL = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188))
_SDXL_BIAS = (0.1084, -0.0175, -0.0011)
_QUALITY = 70
_SCALE = 2  # previews are twice the latent size: 128x128 for a 512x512 image


class Preview:
	"""Projects latents of one model family to JPEG bytes."""

	def __init__(self, base: ModelBase) -> None:
		sdxl = base is ModelBase.SDXL
		self._factors = torch.tensor(_SDXL if sdxl else _SD1)
		self._bias = torch.tensor(_SDXL_BIAS if sdxl else (0.0, 0.0, 0.0))

	def jpeg(self, latents: torch.Tensor) -> tuple[bytes, int, int] | None:
		"""The first image of `latents` (batch, channels, h, w) as (JPEG, width, height); None if unsupported."""
		first = latents[0].detach().float().cpu()
		if first.shape[0] != self._factors.shape[0]:
			return None
		rgb = torch.einsum('chw,cr->hwr', first, self._factors) + self._bias
		pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
		image = Image.fromarray(pixels, 'RGB')
		image = image.resize((image.width * _SCALE, image.height * _SCALE), Image.Resampling.BILINEAR)
		buffer = io.BytesIO()
		image.save(buffer, format='JPEG', quality=_QUALITY)
		return buffer.getvalue(), image.width, image.height
