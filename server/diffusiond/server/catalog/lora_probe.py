"""What a LoRA file is, from its safetensors header alone: format, rank, targets, base model, metadata.

Two layouts are common: kohya / A1111 (`lora_unet_….lora_down.weight`, `lora_te[12]_…`, `.alpha`) as
Civitai files come, and diffusers / peft (`unet.….lora_A.weight`, `text_encoder.…`). The base follows
from the cross-attention key width (768 SD1, 1024 SD2, 2048 SDXL) or, for text-encoder-only files, the
text encoder width and a second text encoder (SDXL); kohya metadata fills in where shapes cannot tell.
"""

import enum
import json
import math
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from diffusiond.server.catalog.probe import HeaderError, SafetensorsHeader, read_safetensors
from diffusiond.server.catalog.schemas import ModelBase, ModelStatus

_BASES = {768: ModelBase.SD1, 1024: ModelBase.SD2, 2048: ModelBase.SDXL}
_DOWN = ('.lora_down.weight', '.lora_A.weight', '.lora.down.weight', '_lora.down.weight')
_METADATA_BASES = {'sd_v1': ModelBase.SD1, 'sd_v2': ModelBase.SD2, 'sdxl': ModelBase.SDXL}
MAX_TRIGGERS = 8


class LoraFormat(enum.Enum):
	KOHYA = 'kohya'
	DIFFUSERS = 'diffusers'
	PICKLE = 'pickle'


class LoraProbe(BaseModel):
	format: LoraFormat
	status: ModelStatus = ModelStatus.READY
	problem: str = ''
	base: ModelBase = ModelBase.UNKNOWN
	cross_attention_dim: int = 0  # matches Architecture.cross_attention_dim of compatible models
	rank: int = 0
	alpha: float | None = None
	unet: bool = False
	text_encoder: bool = False
	modules: int = 0
	output_name: str = ''
	trained_on: str = ''
	suggested_triggers: list[str] = Field(default_factory=list)
	data_offset: int = 0  # where the tensor data starts (the addnet hash covers what follows)


def _format(keys: list[str]) -> LoraFormat | None:
	if any(key.startswith(('lora_unet_', 'lora_te_', 'lora_te1_', 'lora_te2_')) for key in keys):
		return LoraFormat.KOHYA
	if any(key.endswith(_DOWN) for key in keys):
		return LoraFormat.DIFFUSERS
	return None


def metadata_base(metadata: dict[str, str]) -> ModelBase:
	"""The base kohya's `ss_base_model_version` or the modelspec's `modelspec.architecture` names."""
	version = metadata.get('ss_base_model_version', '') or metadata.get('modelspec.architecture', '')
	version = version.replace('stable-diffusion-xl', 'sdxl').replace('stable-diffusion-v', 'sd_v')
	return next((base for prefix, base in _METADATA_BASES.items() if version.startswith(prefix)), ModelBase.UNKNOWN)


def suggested_triggers(metadata: dict[str, str]) -> list[str]:
	"""modelspec.trigger_phrase, else the most frequent training tags (kohya ss_tag_frequency)."""
	phrase = metadata.get('modelspec.trigger_phrase', '')
	if phrase:
		return [word.strip() for word in phrase.split(',') if word.strip()][:MAX_TRIGGERS]
	try:
		frequencies = json.loads(metadata.get('ss_tag_frequency', '') or '{}')
	except ValueError:
		return []
	counts: Counter[str] = Counter()
	if isinstance(frequencies, dict):
		for tags in frequencies.values():
			if isinstance(tags, dict):
				counts.update({str(tag).strip(): int(n) for tag, n in tags.items() if isinstance(n, int)})
	ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
	return [tag for tag, _ in ranked if tag][:MAX_TRIGGERS]


def _alpha(text: str) -> float | None:
	"""kohya's network alpha, when it is a plain finite number."""
	try:
		value = float(text)
	except ValueError:
		return None
	return value if math.isfinite(value) and abs(value) <= 1e6 else None


def probe_lora_header(header: SafetensorsHeader) -> LoraProbe:
	keys = list(header.shapes)
	kind = _format(keys)
	downs = {key: shape for key, shape in header.shapes.items() if key.endswith(_DOWN) and len(shape) >= 2}
	if kind is None or not downs:
		lycoris = any('hada_' in key or 'lokr_' in key for key in keys)
		problem = 'LyCORIS (LoHa/LoKr) is not supported' if lycoris else 'no LoRA weights (lora_down/lora_A) found'
		return LoraProbe(format=kind or LoraFormat.KOHYA, status=ModelStatus.INVALID, problem=problem)
	text = [key for key in downs if key.startswith(('lora_te', 'text_encoder'))]
	context = next((shape[1] for key, shape in downs.items() if 'attn2' in key and 'to_k' in key), 0)
	text_width = next((shape[1] for key, shape in downs.items() if key in text), 0)
	second = any(key.startswith(('lora_te2_', 'text_encoder_2.')) for key in keys)
	base = _BASES.get(context) or (ModelBase.SDXL if second else _BASES.get(text_width, ModelBase.UNKNOWN))
	if base is ModelBase.UNKNOWN and not context:
		base = metadata_base(header.metadata)
	return LoraProbe(
		format=kind,
		base=base,
		cross_attention_dim=context,
		rank=max((shape[0] for shape in downs.values()), default=0),
		alpha=_alpha(header.metadata.get('ss_network_alpha', '')),
		unet=len(downs) > len(text),
		text_encoder=bool(text),
		modules=len(downs),
		output_name=header.metadata.get('ss_output_name', '') or header.metadata.get('modelspec.title', ''),
		trained_on=header.metadata.get('ss_sd_model_name', ''),
		suggested_triggers=suggested_triggers(header.metadata),
		data_offset=header.data_offset,
	)


def probe_lora_file(path: Path) -> LoraProbe:
	if path.suffix.lower() != '.safetensors':
		problem = 'pickle file: it can run code when loaded; use the .safetensors version of this LoRA'
		return LoraProbe(format=LoraFormat.PICKLE, status=ModelStatus.UNSAFE, problem=problem)
	try:
		return probe_lora_header(read_safetensors(path))
	except (OSError, HeaderError) as exc:
		return LoraProbe(format=LoraFormat.KOHYA, status=ModelStatus.INVALID, problem=str(exc))
