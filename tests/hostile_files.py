"""Hostile files for the models and LoRA folders, each one of the kinds that once broke a scan or start-up."""

import json
import os
import struct
from pathlib import Path

from tests.checkpoints import UNET, fake_checkpoint, write_header
from tests.conftest import write_fake_model

ATTN = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k'


def _raw_header(path: Path, raw: bytes) -> None:
	path.write_bytes(struct.pack('<Q', len(raw)) + raw)


def _folder(models: Path, name: str, unet: dict[str, object], index: bytes | None = None) -> None:
	folder = write_fake_model(models / name)
	(folder / 'unet' / 'config.json').write_text(json.dumps(unet))
	if index is not None:
		(folder / 'model_index.json').write_bytes(index)


def hostile_models(models: Path) -> list[str]:
	"""Writes them into `models`; returns the names the catalog lists them under."""
	models.mkdir(parents=True, exist_ok=True)
	_raw_header(models / 'nested.safetensors', b'{"a": ' + b'[' * 100_000 + b']' * 100_000 + b'}')
	write_header(models / 'huge-shape.safetensors', {UNET + 'input_blocks.0.0.weight': [320, 4, 3, 10**30]})
	wide = {
		UNET + 'input_blocks.0.0.weight': [320, 4, 3, 3],
		UNET + 'input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': [320, 2**40],
	}
	write_header(models / 'wide-context.safetensors', wide)
	write_header(models / 'negative.safetensors', {UNET + 'input_blocks.0.0.weight': [-320, 4, 3, 3]})
	os.symlink(models / 'loop.safetensors', models / 'loop.safetensors')
	os.symlink(models / 'nowhere', models / 'dangling.safetensors')
	os.symlink(models, models / 'loopdir')
	fake_checkpoint(models / os.fsdecode(b'bad\xff-name.safetensors'))
	half = write_fake_model(models / 'aaa-half-copied')  # sorts first; its weights are not there yet
	for weights in half.rglob('*.safetensors'):
		weights.unlink()
	base = {'cross_attention_dim': 32, 'in_channels': 4, 'block_out_channels': [32, 64], 'sample_size': 32}
	_folder(models, 'empty-lists', {**base, 'block_out_channels': []})
	_folder(models, 'huge-sample', {**base, 'sample_size': 10**12})
	_folder(models, 'negative-sample', {**base, 'sample_size': -64})
	_folder(models, 'not-json', base, index=b'\xff\xfe not json')
	_folder(models, 'nested-config', base, index=b'[' * 50_000 + b']' * 50_000)
	return [
		'nested',
		'huge-shape',
		'wide-context',
		'negative',
		'loop',
		'dangling',
		'bad\\xff-name',
		'aaa-half-copied',
		'empty-lists',
		'huge-sample',
		'negative-sample',
		'not-json',
		'nested-config',
	]


def hostile_loras(loras: Path) -> dict[str, bool]:
	"""Writes them into `loras`; returns name → whether it stays usable (an odd alpha is only ignored)."""
	loras.mkdir(parents=True, exist_ok=True)
	write_header(loras / 'negative-rank.safetensors', {f'{ATTN}.lora_down.weight': [-4, 768]})
	write_header(loras / 'huge-rank.safetensors', {f'{ATTN}.lora_down.weight': [2**40, 768]})
	shapes = {f'{ATTN}.lora_down.weight': [4, 768], f'{ATTN}.lora_up.weight': [320, 4]}
	write_header(loras / 'odd-alpha.safetensors', shapes, metadata={'ss_network_alpha': '²'})
	_raw_header(loras / 'nested.safetensors', b'[' * 100_000 + b']' * 100_000)
	os.symlink(loras / 'loop.safetensors', loras / 'loop.safetensors')
	write_header(loras / os.fsdecode(b'bad\xfe.safetensors'), shapes)
	return {
		'negative-rank': False,
		'huge-rank': False,
		'odd-alpha': True,
		'nested': False,
		'loop': False,
		'bad\\xfe': False,
	}
