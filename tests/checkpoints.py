"""Header-only fake checkpoints: a valid safetensors header with the shapes a probe looks at, no weights.

Enough for scanning, probing and hashing (tests and the scan benchmark); loading them fails, as it should.
"""

import json
import struct
from pathlib import Path

CONTEXT = {'sd1': 768, 'sd2': 1024, 'sdxl': 2048, 'sdxl-refiner': 1280, 'unknown': 640}  # 640: no family has it
UNET = 'model.diffusion_model.'


def write_header(
	path: Path, shapes: dict[str, list[int]], payload: bytes = b'', metadata: dict[str, str] | None = None
) -> Path:
	"""A safetensors file: 8-byte length, the JSON header (float16 tensors, offsets into `payload`)."""
	header: dict[str, object] = {'__metadata__': {'format': 'pt', **(metadata or {})}}
	for name, shape in shapes.items():
		header[name] = {'dtype': 'F16', 'shape': shape, 'data_offsets': [0, 0]}
	raw = json.dumps(header).encode()
	path.parent.mkdir(parents=True, exist_ok=True)
	path.write_bytes(struct.pack('<Q', len(raw)) + raw + payload)
	return path


def fake_checkpoint(path: Path, base: str = 'sd1', inpainting: bool = False, payload: bytes = b'') -> Path:
	"""A single-file Stable Diffusion checkpoint of `base` (sd1, sd2, sdxl, unknown) as far as its header tells."""
	context = CONTEXT[base]
	shapes = {
		UNET + 'input_blocks.0.0.weight': [320, 9 if inpainting else 4, 3, 3],
		UNET + 'input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': [320, context],
		UNET + 'input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight': [320, context],
		'first_stage_model.decoder.conv_out.weight': [3, 128, 3, 3],
	}
	return write_header(path, shapes, payload)


def fake_lora(path: Path, base: str = 'sd1', metadata: dict[str, str] | None = None, payload: bytes = b'') -> Path:
	"""A kohya-layout LoRA header for `base` (sd1, sd2, sdxl), with a text encoder part."""
	key = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k'
	text = 'lora_te2_' if base == 'sdxl' else 'lora_te_'
	shapes = {
		f'{key}.lora_down.weight': [8, CONTEXT[base]],
		f'{key}.lora_up.weight': [320, 8],
		f'{text}text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': [8, 768],
	}
	return write_header(path, shapes, payload or path.name.encode(), metadata)
