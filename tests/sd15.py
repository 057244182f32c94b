"""An SD1.5-shaped checkpoint with random weights, as one original-layout (LDM) fp16 .safetensors file: the real
shapes and key names of what people download (~2 GB), built from the daemon's shipped SD1 configs."""

from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from diffusiond.server.catalog.families import FAMILIES
from tests.ldm import text_to_ldm, unet_to_ldm, vae_to_ldm


def _random_half(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
	"""The module's weights as small random fp16 values (norm scales 1, biases 0: finite activations)."""
	generator = torch.Generator().manual_seed(seed)
	weights = {}
	for name, tensor in module.state_dict().items():
		if not tensor.is_floating_point():
			weights[name] = tensor.clone()  # position ids
		elif 'norm' in name and name.endswith('weight'):
			weights[name] = torch.ones(tensor.shape, dtype=torch.float16)
		elif name.endswith('bias'):
			weights[name] = torch.zeros(tensor.shape, dtype=torch.float16)
		else:
			weights[name] = (torch.randn(tensor.shape, generator=generator) * 0.02).to(torch.float16)
	return weights


def write_sd15_checkpoint(target: Path) -> Path:
	family = FAMILIES['sd1']
	unet_config = {key: value for key, value in family.unet.items() if not key.startswith('_')}
	vae_config = {key: value for key, value in family.vae.items() if not key.startswith('_')}
	with torch.device('meta'):  # shapes only: the values are drawn below, in fp16
		unet = UNet2DConditionModel.from_config(unet_config)
		vae = AutoencoderKL.from_config(vae_config)
	text_config = {key: value for key, value in family.encoders[0].config().items() if key != 'architectures'}
	text = CLIPTextModel(CLIPTextConfig(**text_config))
	weights = {
		**unet_to_ldm(unet_config, _random_half(unet, 1)),
		**vae_to_ldm(vae_config, _random_half(vae, 2)),
		**text_to_ldm(_random_half(text, 3)),
	}
	target.parent.mkdir(parents=True, exist_ok=True)
	save_file({key: value.contiguous() for key, value in weights.items()}, target)
	return target
