"""Upscaler models through spandrel (the architecture library ComfyUI and chaiNNer use): a file's state dict tells
it the architecture and scale. Safetensors always; a pickle only where pickles are allowed, read with
weights_only=True (never spandrel's own unpickler). The last few models stay on the device; unload frees them."""

import collections
import logging
from collections.abc import Callable
from pathlib import Path

import numpy
import spandrel
import torch
from PIL import Image
from safetensors.torch import load_file

from diffusiond.server.catalog.asset_schemas import UpscalerProbe
from diffusiond.server.catalog.probe import SAFETENSORS_SUFFIXES
from diffusiond.server.catalog.schemas import ModelStatus
from diffusiond.server.engine.tiles import run_tiled
from diffusiond.server.tasks.upscale import passes
from diffusiond.server.tasks.upscaler_file import UpscalerFile

log = logging.getLogger(__name__)
_KEEP = 2  # upscaler models kept loaded
_RESAMPLE = {'Nearest': Image.Resampling.NEAREST, 'Lanczos': Image.Resampling.LANCZOS}
UNSAFE = 'pickle file: it can run code when loaded; use its .safetensors version, or allow pickles'


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
	"""The tensors of an upscaler file, unwrapped ('params_ema', 'state_dict', 'module.' prefixes…) as spandrel
	expects them. Pickles are read with weights_only=True: call only where they are allowed."""
	if path.suffix.lower() in SAFETENSORS_SUFFIXES:
		state: dict[str, torch.Tensor] = load_file(str(path))
	else:
		state = torch.load(path, map_location='cpu', weights_only=True)
	found: dict[str, torch.Tensor] = spandrel.canonicalize_state_dict(state)
	return found


def _model(path: Path) -> spandrel.ImageModelDescriptor:
	descriptor = spandrel.ModelLoader().load_from_state_dict(read_state_dict(path))
	if not isinstance(descriptor, spandrel.ImageModelDescriptor):
		raise ValueError(f'a {descriptor.architecture.name} model takes a mask too (inpainting); it cannot upscale')
	return descriptor


def describe(path: Path, allow_pickle: bool) -> UpscalerProbe:
	"""What an upscaler file is (blocking: reads the whole file once)."""
	pickle = path.suffix.lower() not in SAFETENSORS_SUFFIXES
	if pickle and not allow_pickle:
		return UpscalerProbe(status=ModelStatus.UNSAFE, problem=UNSAFE, pickle=True)
	try:
		descriptor = _model(path)
	except spandrel.UnsupportedModelError:
		problem = 'not an upscaler architecture spandrel knows (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, …)'
		return UpscalerProbe(status=ModelStatus.INVALID, problem=problem, pickle=pickle)
	channels = (descriptor.input_channels, descriptor.output_channels)
	if channels != (3, 3):
		problem = f'takes {channels[0]} channels to {channels[1]}; upscalers here take RGB to RGB'
		return UpscalerProbe(status=ModelStatus.INVALID, problem=problem, pickle=pickle)
	architecture: str = descriptor.architecture.name
	scale: int = descriptor.scale
	purpose: str = descriptor.purpose
	return UpscalerProbe(architecture=architecture, scale=scale, purpose=purpose, pickle=pickle)


def to_tensor(image: Image.Image) -> torch.Tensor:
	"""(1, 3, h, w) float32 in [0, 1]."""
	pixels = torch.from_numpy(numpy.asarray(image.convert('RGB'), dtype=numpy.uint8).copy())
	return pixels.permute(2, 0, 1)[None].float() / 255


def to_image(tensor: torch.Tensor) -> Image.Image:
	pixels = (tensor[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
	return Image.fromarray(pixels.numpy())


def resize(image: Image.Image, size: tuple[int, int], name: str = 'Lanczos') -> Image.Image:
	"""A built-in upscaler (or the exact-size step after a model's)."""
	if image.size == size:
		return image
	return image.resize(size, resample=_RESAMPLE.get(name, Image.Resampling.LANCZOS))


class Upscalers:
	def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
		self._device = device
		self._dtype = dtype
		self._loaded: collections.OrderedDict[str, spandrel.ImageModelDescriptor] = collections.OrderedDict()

	def _get(self, file: UpscalerFile) -> spandrel.ImageModelDescriptor:
		descriptor = self._loaded.get(file.key)
		if descriptor is None:
			descriptor = _model(Path(file.path))
			half = self._dtype is torch.float16 and self._device.type != 'cpu' and descriptor.supports_half
			descriptor.to(self._device).eval()
			if half:
				descriptor.half()
			self._loaded[file.key] = descriptor
			while len(self._loaded) > _KEEP:
				self._loaded.popitem(last=False)
			log.info('upscaler %s loaded (%s x%d)', file.name, file.architecture, file.scale)
		self._loaded.move_to_end(file.key)
		return descriptor

	def upscale(
		self,
		image: Image.Image,
		file: UpscalerFile,
		size: tuple[int, int],
		tiles: tuple[int, int],
		on_tile: Callable[[], None],
	) -> Image.Image:
		"""`image` through the model until it is at least `size` (A1111's rule), then resized to it exactly."""
		descriptor = self._get(file)
		dtype = next(descriptor.model.parameters()).dtype

		def model(piece: torch.Tensor) -> torch.Tensor:
			with torch.inference_mode():
				result: torch.Tensor = descriptor(piece.to(self._device, dtype))
			return result

		for _ in passes(image.width, image.height, size, file.scale):
			image = to_image(run_tiled(model, to_tensor(image), file.scale, *tiles, on_tile))
		return resize(image, size)

	def unload_all(self) -> None:
		self._loaded.clear()
