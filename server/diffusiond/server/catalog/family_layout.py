"""How a family (families.py) is described and laid out as a diffusers folder without weights: model_index.json,
*/config.json, scheduler/, and the tokenizers made offline (tokenizer_files.py)."""

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from diffusiond.server.catalog.tokenizer_files import write_tokenizer
from diffusiond.server.history.files import write_file

Json = dict[str, object]


class TextEncoder(BaseModel):
	folder: str  # text_encoder, text_encoder_2
	cls: Literal['CLIPTextModel', 'CLIPTextModelWithProjection']
	width: int
	layers: int
	heads: int
	projection: int
	act: Literal['quick_gelu', 'gelu']
	pad_token: str  # '<|endoftext|>' (OpenAI CLIP) or '!' (OpenCLIP)

	def config(self) -> Json:
		return {
			'architectures': [self.cls],
			'model_type': 'clip_text_model',
			'hidden_size': self.width,
			'intermediate_size': self.width * 4,
			'num_hidden_layers': self.layers,
			'num_attention_heads': self.heads,
			'projection_dim': self.projection,
			'hidden_act': self.act,
			'max_position_embeddings': 77,
			'vocab_size': 49408,
			'layer_norm_eps': 1e-05,
			'attention_dropout': 0.0,
			'dropout': 0.0,
			'initializer_factor': 1.0,
			'initializer_range': 0.02,
			'bos_token_id': 0,
			'eos_token_id': 2,
			'pad_token_id': 1,
		}


class Family(BaseModel):
	pipeline: str
	unet: Json
	vae: Json
	encoders: list[TextEncoder]
	scheduler: str
	scheduler_config: Json
	extra: Json = {}  # model_index entries of the pipeline (SDXL's empty-prompt and aesthetic-score flags)

	def model_index(self) -> Json:
		index: Json = {
			'_class_name': self.pipeline,
			'unet': ['diffusers', 'UNet2DConditionModel'],
			'vae': ['diffusers', 'AutoencoderKL'],
			'scheduler': ['diffusers', self.scheduler],
			**self.extra,
		}
		for encoder in self.encoders:
			index[encoder.folder] = ['transformers', encoder.cls]
			index[encoder.folder.replace('text_encoder', 'tokenizer')] = ['transformers', 'CLIPTokenizer']
		return index


def _json(path: Path, value: Json) -> None:
	write_file(path, json.dumps(value, indent=2, sort_keys=True).encode())


def write_family(folder: Path, family: Family) -> None:
	"""The family as a diffusers folder without weights (blocking file writes: call through a thread)."""
	_json(folder / 'model_index.json', family.model_index())
	_json(folder / 'unet' / 'config.json', family.unet)
	_json(folder / 'vae' / 'config.json', family.vae)
	_json(folder / 'scheduler' / 'scheduler_config.json', {'_class_name': family.scheduler, **family.scheduler_config})
	for encoder in family.encoders:
		_json(folder / encoder.folder / 'config.json', encoder.config())
		write_tokenizer(folder / encoder.folder.replace('text_encoder', 'tokenizer'), encoder.pad_token)
