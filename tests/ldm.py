"""Writes a diffusers Stable Diffusion folder as one original-layout (A1111 / Civitai) .safetensors file.

The inverse of diffusers' single-file conversion, for SD1-style models of any depth: tests use it to
make a real single-file checkpoint from the tiny model, so loading one runs the real code.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_RESNET = [
	('in_layers.0', 'norm1'),
	('in_layers.2', 'conv1'),
	('out_layers.0', 'norm2'),
	('out_layers.3', 'conv2'),
	('emb_layers.1', 'time_emb_proj'),
	('skip_connection', 'conv_shortcut'),
]
_UNET_FIXED = {
	'time_embedding.linear_1.': 'time_embed.0.',
	'time_embedding.linear_2.': 'time_embed.2.',
	'conv_in.': 'input_blocks.0.0.',
	'conv_norm_out.': 'out.0.',
	'conv_out.': 'out.2.',
}
_VAE_ATTN = [('group_norm.', 'norm.'), ('to_q.', 'q.'), ('to_k.', 'k.'), ('to_v.', 'v.'), ('to_out.0.', 'proj_out.')]


def _unet_prefixes(levels: int, per_block: int, attention: list[bool]) -> dict[str, str]:
	prefixes = dict(_UNET_FIXED)
	for i in range(levels):
		for j in range(per_block):
			index = i * (per_block + 1) + j + 1
			prefixes[f'down_blocks.{i}.resnets.{j}.'] = f'input_blocks.{index}.0.'
			prefixes[f'down_blocks.{i}.attentions.{j}.'] = f'input_blocks.{index}.1.'
		prefixes[f'down_blocks.{i}.downsamplers.0.conv.'] = f'input_blocks.{(i + 1) * (per_block + 1)}.0.op.'
		for j in range(per_block + 1):
			index = i * (per_block + 1) + j
			prefixes[f'up_blocks.{i}.resnets.{j}.'] = f'output_blocks.{index}.0.'
			prefixes[f'up_blocks.{i}.attentions.{j}.'] = f'output_blocks.{index}.1.'
		slot = 2 if attention[i] else 1
		prefixes[f'up_blocks.{i}.upsamplers.0.'] = f'output_blocks.{i * (per_block + 1) + per_block}.{slot}.'
	prefixes['mid_block.attentions.0.'] = 'middle_block.1.'
	for j in range(2):
		prefixes[f'mid_block.resnets.{j}.'] = f'middle_block.{2 * j}.'
	return prefixes


def _rename(key: str, prefixes: dict[str, str]) -> str:
	for old, new in prefixes.items():
		if key.startswith(old):
			rest = key[len(old) :]
			if 'resnets' in old:
				for sd, hf in _RESNET:
					rest = rest.replace(hf, sd)
			return new + rest
	raise KeyError(key)


def _unet(folder: Path) -> dict[str, torch.Tensor]:
	config = json.loads((folder / 'config.json').read_text())
	return unet_to_ldm(config, load_file(folder / 'diffusion_pytorch_model.safetensors'))


def unet_to_ldm(config: dict[str, object], weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
	"""A diffusers UNet's weights under their original (LDM) names."""
	blocks, kinds, per_block = config['block_out_channels'], config['up_block_types'], config['layers_per_block']
	assert isinstance(blocks, list)
	assert isinstance(kinds, list)
	assert isinstance(per_block, int)
	levels = len(blocks)
	attention = ['CrossAttn' in kind for kind in kinds]
	prefixes = _unet_prefixes(levels, per_block, attention)
	return {'model.diffusion_model.' + _rename(key, prefixes): value for key, value in weights.items()}


def _vae(folder: Path) -> dict[str, torch.Tensor]:
	config = json.loads((folder / 'config.json').read_text())
	return vae_to_ldm(config, load_file(folder / 'diffusion_pytorch_model.safetensors'))


def vae_to_ldm(config: dict[str, object], weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
	"""A diffusers VAE's weights under their original names."""
	blocks, per_block = config['block_out_channels'], config['layers_per_block']
	assert isinstance(blocks, list)
	assert isinstance(per_block, int)
	levels = len(blocks)
	prefixes = {'mid_block.attentions.0.': 'mid.attn_1.', 'conv_norm_out.': 'norm_out.'}
	for j in range(2):
		prefixes[f'mid_block.resnets.{j}.'] = f'mid.block_{j + 1}.'
	for i in range(levels):
		prefixes[f'down_blocks.{i}.downsamplers.0.'] = f'down.{i}.downsample.'
		prefixes[f'up_blocks.{i}.upsamplers.0.'] = f'up.{levels - 1 - i}.upsample.'
		for j in range(per_block + 1):
			prefixes[f'down_blocks.{i}.resnets.{j}.'] = f'down.{i}.block.{j}.'
			prefixes[f'up_blocks.{i}.resnets.{j}.'] = f'up.{levels - 1 - i}.block.{j}.'
	converted = {}
	for key, value in weights.items():
		part, _, rest = key.partition('.')
		name = rest
		for old, new in prefixes.items():
			if rest.startswith(old):
				name = new + rest[len(old) :].replace('conv_shortcut', 'nin_shortcut')
				break
		if name.startswith('mid.attn_1.'):
			for hf, sd in _VAE_ATTN:
				name = name.replace(hf, sd)
			value = value.reshape(*value.shape, 1, 1) if value.ndim == 2 else value
		converted[
			f'first_stage_model.{part}.{name}' if part in ('encoder', 'decoder') else f'first_stage_model.{key}'
		] = value
	return converted


def text_to_ldm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
	"""An SD1 text encoder's (OpenAI CLIP-L) weights under their original names."""
	return {
		'cond_stage_model.transformer.text_model.' + key.removeprefix('text_model.'): v for key, v in weights.items()
	}


def write_single_file(model_dir: Path, target: Path) -> Path:
	"""`model_dir` (a diffusers SD1-style folder) as one original-layout .safetensors file at `target`."""
	text = load_file(model_dir / 'text_encoder' / 'model.safetensors')
	weights = {**_unet(model_dir / 'unet'), **_vae(model_dir / 'vae'), **text_to_ldm(text)}
	target.parent.mkdir(parents=True, exist_ok=True)
	save_file({key: value.contiguous() for key, value in weights.items()}, target)
	return target


def controlnet_to_ldm(config: dict[str, object], weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
	"""A diffusers ControlNet's weights under their original (A1111 `control_model.`) names."""
	blocks, per_block, hint = (
		config['block_out_channels'],
		config['layers_per_block'],
		config['conditioning_embedding_out_channels'],
	)
	assert isinstance(blocks, list | tuple)
	assert isinstance(per_block, int)
	assert isinstance(hint, list | tuple)
	prefixes = {
		'controlnet_cond_embedding.conv_in.': 'input_hint_block.0.',
		'controlnet_cond_embedding.conv_out.': 'input_hint_block.14.',
		'controlnet_mid_block.': 'middle_block_out.0.',
	}
	for index in range(2 * (len(hint) - 1)):
		prefixes[f'controlnet_cond_embedding.blocks.{index}.'] = f'input_hint_block.{2 * (index + 1)}.'
	for index in range(len(blocks) * (per_block + 1)):
		prefixes[f'controlnet_down_blocks.{index}.'] = f'zero_convs.{index}.0.'
	prefixes |= _unet_prefixes(len(blocks), per_block, [False] * len(blocks))
	return {'control_model.' + _rename(key, prefixes): value for key, value in weights.items()}
