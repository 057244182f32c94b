"""Tiny random upscaler files in the layouts people download: Real-ESRGAN's RRDBNet (x4plus: conv_first, body.N.rdbM,
conv_up1/2, conv_hr, conv_last), Real-ESRGAN's SRVGGNetCompact (realesr-general: body.N) and a training checkpoint
wrapped in `params_ema` as a .pth pickle."""

from pathlib import Path

import torch
from safetensors.torch import save_file

Tensors = dict[str, torch.Tensor]


def _conv(tensors: Tensors, name: str, out: int, into: int, generator: torch.Generator) -> None:
	tensors[f'{name}.weight'] = torch.randn(out, into, 3, 3, generator=generator) * 0.1
	tensors[f'{name}.bias'] = torch.randn(out, generator=generator) * 0.01


def rrdb_x4(seed: int = 0, features: int = 8) -> Tensors:
	"""RealESRGAN_x4plus's layout with 8 features and one block (spandrel's ESRGAN reads 32 growth channels)."""
	generator, tensors, grow = torch.Generator().manual_seed(seed), Tensors(), 32
	_conv(tensors, 'conv_first', features, 3, generator)
	for rdb in (1, 2, 3):
		for index in range(1, 6):
			out = grow if index < 5 else features
			_conv(tensors, f'body.0.rdb{rdb}.conv{index}', out, features + (index - 1) * grow, generator)
	for name in ('conv_body', 'conv_up1', 'conv_up2', 'conv_hr'):
		_conv(tensors, name, features, features, generator)
	_conv(tensors, 'conv_last', 3, features, generator)
	return tensors


def compact_x2(seed: int = 0, features: int = 8, convs: int = 2) -> Tensors:
	"""realesr-general-x4v3's layout (SRVGGNetCompact: conv, PReLU, …, a conv to 3·scale² channels), at scale 2."""
	generator, tensors, index = torch.Generator().manual_seed(seed), Tensors(), 0
	_conv(tensors, 'body.0', features, 3, generator)
	for _ in range(convs + 1):
		tensors[f'body.{index + 1}.weight'] = torch.full((features,), 0.2)
		index += 2
		if index // 2 <= convs:
			_conv(tensors, f'body.{index}', features, features, generator)
	_conv(tensors, f'body.{index}', 3 * 2 * 2, features, generator)
	return tensors


def write_upscalers(folder: Path) -> None:
	folder.mkdir(parents=True, exist_ok=True)
	save_file(rrdb_x4(1), folder / 'RealESRGAN_x4plus.safetensors')
	save_file(compact_x2(2), folder / 'realesr-compact-x2.safetensors')
	torch.save({'params_ema': rrdb_x4(3)}, folder / '4x-old-training.pth')
	save_file({'weight': torch.zeros(4, 4)}, folder / 'not-an-upscaler.safetensors')
