"""LoRA files from their header alone: format, rank, targets, base, kohya metadata, addnet hash."""

import hashlib
import json
from pathlib import Path

import pytest
from diffusers import StableDiffusionPipeline
from peft import LoraConfig, get_peft_model_state_dict

from diffusiond.server.catalog.files import lora_hashes
from diffusiond.server.catalog.lora_probe import LoraFormat, probe_lora_file
from diffusiond.server.catalog.probe import read_safetensors
from diffusiond.server.catalog.schemas import ModelBase, ModelStatus
from diffusiond.server.engine.demo import build_pipeline
from tests.checkpoints import write_header

KOHYA_K = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k'
KOHYA_Q = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q'


def _kohya(path: Path, context: int, extra: dict[str, list[int]], metadata: dict[str, str] | None = None) -> Path:
	shapes = {
		f'{KOHYA_K}.lora_down.weight': [8, context],
		f'{KOHYA_K}.lora_up.weight': [320, 8],
		f'{KOHYA_K}.alpha': [],
		f'{KOHYA_Q}.lora_down.weight': [8, 320],
		**extra,
	}
	return write_header(path, shapes, b'\x00' * 64, metadata)


def test_a_peft_lora_of_the_tiny_model(tmp_path: Path) -> None:
	pipe = build_pipeline()
	config = LoraConfig(r=4, lora_alpha=4, target_modules=['to_q', 'to_k', 'to_v', 'to_out.0'], init_lora_weights=False)
	pipe.unet.add_adapter(config)
	StableDiffusionPipeline.save_lora_weights(
		tmp_path, unet_lora_layers=get_peft_model_state_dict(pipe.unet), safe_serialization=True
	)
	probe = probe_lora_file(tmp_path / 'pytorch_lora_weights.safetensors')
	assert (probe.format, probe.status, probe.base) == (LoraFormat.DIFFUSERS, ModelStatus.READY, ModelBase.UNKNOWN)
	assert (probe.cross_attention_dim, probe.rank, probe.modules) == (32, 4, 48)
	assert (probe.unet, probe.text_encoder) == (True, False)


def test_kohya_sd1_with_metadata(tmp_path: Path) -> None:
	tags = {'10_fox': {'red fox': 40, 'snow': 12, 'forest': 12, '': 3}, 'extra': {'snow': 1}}
	metadata = {
		'ss_output_name': 'fox-style',
		'ss_network_alpha': '4.0',
		'ss_sd_model_name': 'v1-5-pruned.safetensors',
		'ss_tag_frequency': json.dumps(tags),
	}
	te = {'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': [8, 768]}
	probe = probe_lora_file(_kohya(tmp_path / 'fox.safetensors', 768, te, metadata))
	assert (probe.format, probe.base, probe.rank, probe.alpha) == (LoraFormat.KOHYA, ModelBase.SD1, 8, 4.0)
	assert (probe.unet, probe.text_encoder, probe.modules) == (True, True, 3)
	assert (probe.output_name, probe.trained_on) == ('fox-style', 'v1-5-pruned.safetensors')
	assert probe.suggested_triggers == ['red fox', 'snow', 'forest']


@pytest.mark.parametrize(
	('context', 'extra', 'metadata', 'expected'),
	[
		(
			2048,
			{'lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': [4, 1280]},
			{},
			ModelBase.SDXL,
		),
		(1024, {}, {}, ModelBase.SD2),
		(320, {}, {'ss_base_model_version': 'sdxl_base_v1-0'}, ModelBase.UNKNOWN),  # shapes win over metadata
	],
)
def test_kohya_bases(
	tmp_path: Path, context: int, extra: dict[str, list[int]], metadata: dict[str, str], expected: ModelBase
) -> None:
	assert probe_lora_file(_kohya(tmp_path / 'l.safetensors', context, extra, metadata)).base is expected


def test_text_encoder_only_loras_and_metadata_fallback(tmp_path: Path) -> None:
	sd2 = {'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': [4, 1024]}
	assert probe_lora_file(write_header(tmp_path / 'a.safetensors', sd2)).base is ModelBase.SD2
	odd = {'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': [4, 512]}
	described = write_header(
		tmp_path / 'b.safetensors', odd, metadata={'modelspec.architecture': 'stable-diffusion-v1/lora'}
	)
	assert probe_lora_file(described).base is ModelBase.SD1
	phrase = write_header(tmp_path / 'c.safetensors', odd, metadata={'modelspec.trigger_phrase': 'foxy, red ,'})
	assert probe_lora_file(phrase).suggested_triggers == ['foxy', 'red']


def test_files_that_are_not_usable_loras(tmp_path: Path) -> None:
	lycoris = write_header(tmp_path / 'loha.safetensors', {'lora_unet_x.hada_w1_a': [4, 320]})
	(tmp_path / 'old.pt').write_bytes(b'pickle')
	(tmp_path / 'cut.safetensors').write_bytes(b'\x00\x01')
	checkpoint = write_header(
		tmp_path / 'ckpt.safetensors', {'model.diffusion_model.input_blocks.0.0.weight': [320, 4, 3, 3]}
	)
	assert 'LyCORIS' in probe_lora_file(lycoris).problem
	assert probe_lora_file(tmp_path / 'old.pt').status is ModelStatus.UNSAFE
	for path in (tmp_path / 'cut.safetensors', checkpoint):
		assert probe_lora_file(path).status is ModelStatus.INVALID


def test_addnet_hash_covers_the_data_after_the_header(tmp_path: Path) -> None:
	path = _kohya(tmp_path / 'h.safetensors', 768, {}, {'ss_output_name': 'h'})
	raw = path.read_bytes()
	offset = read_safetensors(path).data_offset
	hashes = lora_hashes(path, offset)
	assert hashes.sha256 == hashlib.sha256(raw).hexdigest()
	assert hashes.addnet == hashlib.sha256(raw[offset:]).hexdigest()
	renamed = _kohya(tmp_path / 'h2.safetensors', 768, {}, {'ss_output_name': 'other name'})
	assert lora_hashes(renamed, read_safetensors(renamed).data_offset).addnet == hashes.addnet, 'metadata edits keep it'
