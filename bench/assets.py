"""Embedding and VAE costs on the tiny model, each ÷ a tiny 20-step generation in the same run: reading an
embedding file and encoding a prompt that names it (first use and repeats), loading a VAE file in the A1111 (LDM)
layout, and switching between loaded VAEs."""

import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from bench.timing import median_seconds
from diffusiond.server.engine.demo import build_pipeline
from diffusiond.server.engine.embeddings import EmbeddingVectors
from diffusiond.server.engine.prompt_embeds import embed
from diffusiond.server.engine.vaes import VaeSwitch, load_vae
from diffusiond.server.prompting.tokens import PromptTokenizer
from diffusiond.server.schemas import AssetSpec
from tests.ldm import vae_to_ldm

PROMPT = 'a photo of a red fox in the snow, benchemb'


def _spec(path: Path, name: str) -> AssetSpec:
	return AssetSpec(id=name, name=name, file=path.name, path=path, key=name)


def run_assets(repeats: int = 15) -> list[tuple[str, str]]:
	pipe = build_pipeline()
	pipe.set_progress_bar_config(disable=True)
	with tempfile.TemporaryDirectory() as scratch:
		folder = Path(scratch)
		embedding = folder / 'benchemb.safetensors'
		save_file({'emb_params': torch.randn(4, pipe.text_encoder.config.hidden_size)}, embedding)
		ldm = {
			key.removeprefix('first_stage_model.'): value.contiguous()
			for key, value in vae_to_ldm(dict(pipe.vae.config), pipe.vae.state_dict()).items()
		}
		save_file(ldm, folder / 'vae.safetensors')
		tokenizer = PromptTokenizer(pipe.tokenizer)
		names = (('benchemb', 4),)
		spec = _spec(embedding, 'benchemb')

		def encode(vectors: EmbeddingVectors | None) -> None:
			tokens = tokenizer.tokens(PROMPT, '', names if vectors is not None else ())
			found = {'benchemb': vectors.of(spec)} if vectors is not None else {}
			with torch.inference_mode():
				embed(pipe, tokens, True, 1, 1, found)

		kept = EmbeddingVectors(allow_pickle=False)
		encode(kept)
		plain = median_seconds(lambda: encode(None), repeats)
		first = median_seconds(lambda: encode(EmbeddingVectors(allow_pickle=False)), repeats)
		repeat = median_seconds(lambda: encode(kept), repeats)
		vae_spec = _spec(folder / 'vae.safetensors', 'vae')
		own = pipe.vae
		load = median_seconds(lambda: load_vae(vae_spec, own, False), 5)
		switch = VaeSwitch(allow_pickle=False)
		switch.use(pipe, own, 'm', vae_spec)

		def flip() -> None:
			switch.use(pipe, own, 'm', vae_spec if pipe.vae is own else None)

		flips = median_seconds(flip, repeats)
		switch.use(pipe, own, 'm', None)
		with torch.inference_mode():
			generation = median_seconds(lambda: pipe(PROMPT, num_inference_steps=20, width=64, height=64), 3)
	return [
		('embedding: prompt read + encoded with it ÷ without (repeat)', f'{repeat / plain:.2f}'),
		('  first use (file read) / repeat, ms', f'{first * 1000:.1f} / {repeat * 1000:.1f}'),
		('  first use ÷ a tiny 20-step generation', f'{first / generation:.3f}'),
		('VAE file (LDM layout) loaded ÷ a tiny 20-step generation', f'{load / generation:.3f}'),
		('  switching loaded VAEs ÷ a tiny 20-step generation', f'{flips / generation:.5f}'),
	]
