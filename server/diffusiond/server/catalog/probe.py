"""Tells what a checkpoint is from configs or the safetensors JSON header alone: no tensor is read.

Cross-attention key width 768 → SD1.x, 1024 → SD2.x, 2048 → SDXL; UNet input channels 9 → inpainting.
"""

import json
import struct
from pathlib import Path

from pydantic import BaseModel, ValidationError

from diffusiond.server.catalog.schemas import Architecture, ModelBase, ModelFormat, ModelStatus, Probe

DEMO_MARKER = 'DIFFUSIOND_DEMO_MODEL'
SAFETENSORS_SUFFIXES = frozenset({'.safetensors'})
PICKLE_SUFFIXES = frozenset({'.ckpt', '.pt', '.pth', '.bin'})
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
_BASES = {768: ModelBase.SD1, 1024: ModelBase.SD2, 2048: ModelBase.SDXL}
_NATIVE = {ModelBase.SD1: 512, ModelBase.SD2: 768, ModelBase.SDXL: 1024, ModelBase.UNKNOWN: 512}
_UNET = 'model.diffusion_model.'
_CONV_IN = _UNET + 'input_blocks.0.0.weight'


class HeaderError(ValueError):
	pass


class _Tensor(BaseModel):
	shape: list[int]


class SafetensorsHeader(BaseModel):
	shapes: dict[str, list[int]]
	metadata: dict[str, str]  # the free-form `__metadata__` (kohya ss_* keys, modelspec.*)
	data_offset: int  # where the tensor bytes start: 8 + header length


def read_safetensors(path: Path) -> SafetensorsHeader:
	"""The safetensors header (8-byte little-endian length + JSON): shapes and metadata, no tensor data."""
	with path.open('rb') as file:
		prefix = file.read(8)
		if len(prefix) < 8:
			raise HeaderError('the file is too short to be safetensors')
		(length,) = struct.unpack('<Q', prefix)
		if not 2 <= length <= MAX_HEADER_BYTES:
			raise HeaderError(f'the safetensors header length {length} is not plausible')
		raw = file.read(length)
	if len(raw) < length:
		raise HeaderError('the file ends inside its safetensors header (truncated download?)')
	try:
		header = json.loads(raw)
		metadata = header.pop('__metadata__', None) or {}
		return SafetensorsHeader(
			shapes={name: _Tensor.model_validate(value).shape for name, value in header.items()},
			metadata={str(key): str(value) for key, value in metadata.items()},
			data_offset=8 + length,
		)
	except (ValueError, AttributeError, ValidationError) as exc:
		raise HeaderError(f'the safetensors header is not valid JSON of tensors: {exc}') from exc


def read_header(path: Path) -> dict[str, list[int]]:
	"""Tensor name → shape."""
	return read_safetensors(path).shapes


def _kind_of_other(keys: list[str]) -> str:
	if any(key.startswith(('lora_', 'lora_unet', 'lora_te')) or '.lora_' in key for key in keys):
		return 'a LoRA (put it into the loras folder)'
	if any(key.startswith(('encoder.', 'decoder.', 'first_stage_model.')) for key in keys):
		return 'a VAE or a partial checkpoint'
	if any(key.startswith(('down_blocks.', 'conv_in.')) for key in keys):
		return 'a single diffusers component (use the whole diffusers folder)'
	return 'not a Stable Diffusion checkpoint'


def probe_header(shapes: dict[str, list[int]]) -> Probe:
	conv_in = shapes.get(_CONV_IN)
	if conv_in is None or len(conv_in) != 4:
		what = _kind_of_other(list(shapes))
		return Probe(format=ModelFormat.SAFETENSORS, status=ModelStatus.INVALID, problem=f'no UNet found: {what}')
	context = next(
		(shape[1] for key, shape in shapes.items() if key.startswith(_UNET) and key.endswith('attn2.to_k.weight')), 0
	)
	base = _BASES.get(context, ModelBase.UNKNOWN)
	return Probe(
		format=ModelFormat.SAFETENSORS,
		base=base,
		inpainting=conv_in[1] == 9,
		native_size=_NATIVE[base],
		arch=Architecture(cross_attention_dim=context, in_channels=conv_in[1], model_channels=conv_in[0]),
	)


def probe_file(path: Path) -> Probe:
	suffix = path.suffix.lower()
	if suffix in PICKLE_SUFFIXES:
		return Probe(
			format=ModelFormat.PICKLE,
			status=ModelStatus.UNSAFE,
			problem='pickle checkpoint: it can run code when loaded; convert it to .safetensors or allow pickle',
		)
	try:
		return probe_header(read_header(path))
	except (OSError, HeaderError) as exc:
		return Probe(format=ModelFormat.SAFETENSORS, status=ModelStatus.INVALID, problem=str(exc))


class _UnetConfig(BaseModel):
	cross_attention_dim: int | list[int] = 0
	in_channels: int = 4
	block_out_channels: list[int] = [0]
	sample_size: int = 64


class _VaeConfig(BaseModel):
	block_out_channels: list[int] = [0, 0, 0, 0]


def probe_folder(folder: Path) -> Probe:
	"""A diffusers folder, from model_index.json and the UNet/VAE configs."""
	try:
		index = json.loads((folder / 'model_index.json').read_text())
		unet = _UnetConfig.model_validate_json((folder / 'unet' / 'config.json').read_text())
		vae = _VaeConfig.model_validate_json((folder / 'vae' / 'config.json').read_text())
	except (OSError, ValueError) as exc:
		return Probe(format=ModelFormat.DIFFUSERS, status=ModelStatus.INVALID, problem=f'unreadable config: {exc}')
	context = unet.cross_attention_dim
	width = context if isinstance(context, int) else context[0]
	name = str(index.get('_class_name', '')) if isinstance(index, dict) else ''
	base = ModelBase.SDXL if 'XL' in name else _BASES.get(width, ModelBase.UNKNOWN)
	return Probe(
		format=ModelFormat.DIFFUSERS,
		base=base,
		inpainting=unet.in_channels == 9,
		native_size=unet.sample_size << (len(vae.block_out_channels) - 1),
		demo=(folder / DEMO_MARKER).exists(),
		arch=Architecture(
			cross_attention_dim=width, in_channels=unet.in_channels, model_channels=unet.block_out_channels[0]
		),
	)
