"""Tells what a checkpoint is from configs or the safetensors JSON header alone: no tensor is read.

Cross-attention key width 768 → SD1.x, 1024 → SD2.x, 2048 → SDXL, 1280 → the SDXL refiner; UNet input channels
9 → inpainting.
"""

import struct
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import from_json

from diffusiond.server.catalog.schemas import Architecture, ModelBase, ModelFormat, ModelStatus, Probe

DEMO_MARKER = 'DIFFUSIOND_DEMO_MODEL'
SAFETENSORS_SUFFIXES = frozenset({'.safetensors'})
PICKLE_SUFFIXES = frozenset({'.ckpt', '.pt', '.pth', '.bin'})
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
_BASES = {768: ModelBase.SD1, 1024: ModelBase.SD2, 2048: ModelBase.SDXL, 1280: ModelBase.SDXL}  # 1280: the refiner
_NATIVE = {ModelBase.SD1: 512, ModelBase.SD2: 768, ModelBase.SDXL: 1024, ModelBase.UNKNOWN: 512}
_UNET = 'model.diffusion_model.'
_CONV_IN = _UNET + 'input_blocks.0.0.weight'


class HeaderError(ValueError):
	pass


MAX_DIM = 2**31 - 1  # no real tensor has a side this long; larger numbers are a damaged or hostile header


class _Tensor(BaseModel):
	shape: list[Annotated[int, Field(ge=0, le=MAX_DIM)]] = Field(max_length=8)


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
		header = from_json(raw)  # jiter: a depth limit instead of Python's RecursionError
		if not isinstance(header, dict):
			raise HeaderError('the safetensors header is not a JSON object')
		metadata = header.pop('__metadata__', None) or {}
		if not isinstance(metadata, dict):
			raise HeaderError('the safetensors __metadata__ is not a JSON object')
		return SafetensorsHeader(
			shapes={str(name): _Tensor.model_validate(value).shape for name, value in header.items()},
			metadata={str(key): str(value) for key, value in metadata.items()},
			data_offset=8 + length,
		)
	except (ValueError, AttributeError, ValidationError) as exc:
		if isinstance(exc, HeaderError):
			raise
		raise HeaderError(f'the safetensors header is not valid JSON of tensors: {str(exc)[:300]}') from exc


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


Width = Annotated[int, Field(ge=1, le=1 << 20)]


class _UnetConfig(BaseModel):
	cross_attention_dim: Width | Annotated[list[Width], Field(min_length=1, max_length=16)] = 768
	in_channels: Annotated[int, Field(ge=1, le=64)] = 4
	block_out_channels: Annotated[list[Width], Field(min_length=1, max_length=16)] = [320]
	sample_size: Annotated[int, Field(ge=1, le=4096)] = 64


class _VaeConfig(BaseModel):
	block_out_channels: Annotated[list[Width], Field(min_length=1, max_length=8)] = [128, 256, 512, 512]


_WEIGHTS = ('.safetensors', '.bin')
_COMPONENTS = ('unet', 'vae', 'text_encoder')


def _missing_weights(folder: Path, index: dict[str, object]) -> list[str]:
	"""The components a (half-copied) diffusers folder lists but holds no weight files for."""
	present = [name for name in _COMPONENTS if name in index]  # [null, null] = none (an SDXL refiner's text_encoder)
	listed = [name for name in present if index[name] != [None, None]] or ['unet', 'vae']
	return [
		name
		for name in listed
		if not any(path.suffix in _WEIGHTS and path.is_file() for path in (folder / name).glob('*'))
	]


def probe_folder(folder: Path) -> Probe:
	"""A diffusers folder, from model_index.json and the UNet/VAE configs; its weight files must be there."""
	try:
		index = from_json((folder / 'model_index.json').read_bytes())
		if not isinstance(index, dict):
			raise ValueError('model_index.json is not a JSON object')
		unet = _UnetConfig.model_validate_json((folder / 'unet' / 'config.json').read_bytes())
		vae = _VaeConfig.model_validate_json((folder / 'vae' / 'config.json').read_bytes())
	except (OSError, ValueError) as exc:
		problem = f'unreadable config: {str(exc)[:300]}'
		return Probe(format=ModelFormat.DIFFUSERS, status=ModelStatus.INVALID, problem=problem)
	missing = _missing_weights(folder, index)
	if missing:
		problem = f'incomplete diffusers folder (still being copied?): no weights in {", ".join(missing)}'
		return Probe(format=ModelFormat.DIFFUSERS, status=ModelStatus.INVALID, problem=problem)
	context = unet.cross_attention_dim
	width = context if isinstance(context, int) else context[0]
	name = str(index.get('_class_name', '')) if isinstance(index, dict) else ''
	base = ModelBase.SDXL if 'XL' in name else _BASES.get(width, ModelBase.UNKNOWN)
	return Probe(
		format=ModelFormat.DIFFUSERS,
		base=base,
		inpainting=unet.in_channels == 9,
		native_size=min(unet.sample_size << (len(vae.block_out_channels) - 1), 16384),
		demo=(folder / DEMO_MARKER).exists(),
		arch=Architecture(
			cross_attention_dim=width, in_channels=unet.in_channels, model_channels=unet.block_out_channels[0]
		),
	)
