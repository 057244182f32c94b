"""SDXL prompts on a tiny SDXL pipeline: a plain prompt encodes as diffusers' encode_prompt does, and an SDXL
embedding (clip_l + clip_g) exactly as diffusers' textual inversion loaded into both encoders."""

from pathlib import Path

import torch
from safetensors.torch import save_file

from diffusiond.server.engine.embeddings import vectors_of
from diffusiond.server.engine.prompt_embeds import embed
from diffusiond.server.engine.tensor_files import read_tensors
from diffusiond.server.prompting.tokens import PromptTokenizer
from tests.sdxl_tiny import build_sdxl

PROMPT = 'a fox in snow'


def _ours(
	names: tuple[tuple[str, int], ...], prompt: str, vectors: dict[str, dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
	pipe = build_sdxl()
	tokens = PromptTokenizer(pipe.tokenizer).tokens(prompt, '', names)
	with torch.inference_mode():
		return embed(pipe, tokens, False, 1, 1, vectors)


def test_a_plain_sdxl_prompt_encodes_as_diffusers_does() -> None:
	pipe = build_sdxl()
	with torch.inference_mode():
		prompt, _, pooled, _ = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False)
	ours = _ours((), PROMPT, {})
	assert torch.equal(ours['prompt_embeds'], prompt)
	assert torch.equal(ours['pooled_prompt_embeds'], pooled)


def test_an_sdxl_embedding_is_exactly_diffusers_textual_inversion(tmp_path: Path) -> None:
	generator = torch.Generator().manual_seed(3)
	clip_l, clip_g = torch.randn(2, 32, generator=generator), torch.randn(2, 32, generator=generator)
	path = tmp_path / 'xlemb.safetensors'
	save_file({'clip_l': clip_l, 'clip_g': clip_g}, path)
	pipe = build_sdxl()
	pipe.load_textual_inversion(clip_g, token='xlemb', text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
	pipe.load_textual_inversion(clip_l, token='xlemb', text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
	with torch.inference_mode():
		prompt, _, pooled, _ = pipe.encode_prompt(f'{PROMPT} xlemb', do_classifier_free_guidance=False)
	vectors = {'xlemb': vectors_of(read_tensors(path, False), 'xlemb')}
	ours = _ours((('xlemb', 2),), f'{PROMPT} xlemb', vectors)
	assert torch.equal(ours['prompt_embeds'], prompt)
	assert torch.equal(ours['pooled_prompt_embeds'], pooled)
	as_text = _ours((), f'{PROMPT} xlemb', {})  # the same words with no embedding of that name: read as text
	assert not torch.equal(as_text['prompt_embeds'], ours['prompt_embeds'])
