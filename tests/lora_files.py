"""LoRA files for the tiny model: a peft adapter saved the diffusers way, and the same weights in kohya layout."""

from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from peft import LoraConfig, get_peft_model_state_dict
from safetensors.torch import load_file, save_file

from diffusiond.server.engine.demo import build_pipeline

TARGETS = ['to_q', 'to_k', 'to_v', 'to_out.0']


def write_tiny_lora(target: Path, seed: int = 5, rank: int = 4) -> Path:
	"""A rank-`rank` LoRA on the tiny UNet's attention projections with non-zero random weights."""
	pipe = build_pipeline(seed=seed)
	pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, init_lora_weights=False))
	target.parent.mkdir(parents=True, exist_ok=True)
	StableDiffusionPipeline.save_lora_weights(
		target.parent,
		unet_lora_layers=get_peft_model_state_dict(pipe.unet),
		weight_name=target.name,
		safe_serialization=True,
	)
	return target


def write_kohya(source: Path, target: Path) -> Path:
	"""`source` (diffusers layout) as a kohya / A1111 file: lora_unet_<module>.lora_down/lora_up/alpha."""
	converted: dict[str, torch.Tensor] = {}
	for key, tensor in load_file(source).items():
		module = key.removeprefix('unet.')
		for suffix, kohya in (('.lora_A.weight', '.lora_down.weight'), ('.lora_B.weight', '.lora_up.weight')):
			if module.endswith(suffix):
				name = 'lora_unet_' + module.removesuffix(suffix).replace('.', '_')
				converted[name + kohya] = tensor
				if suffix == '.lora_A.weight':
					converted[name + '.alpha'] = torch.tensor(float(tensor.shape[0]))  # alpha = rank: scale 1
	save_file(converted, target, metadata={'ss_output_name': target.stem, 'ss_network_dim': '4'})
	return target
