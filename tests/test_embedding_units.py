"""Embeddings and VAEs without a daemon: probes of every layout, the prompt's embedding places, the vectors."""

from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL

from diffusiond.server.catalog.asset_probe import probe_asset_file, probe_embedding_shapes, probe_vae_shapes
from diffusiond.server.catalog.asset_schemas import AssetLayout
from diffusiond.server.catalog.schemas import ModelBase, ModelStatus
from diffusiond.server.engine.embeddings import vectors_of
from diffusiond.server.engine.tensor_files import pickle_shapes, read_tensors
from diffusiond.server.engine.vaes import UPCAST_NOTICE, watched_decode
from diffusiond.server.errors import AssetNotApplicableError
from diffusiond.server.prompting.attention import parse_attention
from diffusiond.server.prompting.chunks import CHUNK, PLACEHOLDER, TokenIds, chunk_prompt
from diffusiond.server.prompting.words import Word, Words
from tests.asset_files import random_vectors, write_embedding, write_sdxl_embedding
from tests.checkpoints import write_header

IDS = TokenIds(start=1, end=2, comma=3)
WORDS = Words.of([Word(ids=[50, 51], name='two-token', vectors=3), Word(ids=[50], name='one', vectors=1)])


def _tokenize(texts: list[str]) -> list[list[int]]:
	table = {',': [3], 'emb': [50, 51], 'e': [50], 'big': [60]}
	return [[token for word in text.replace(',', ' , ').split() for token in table.get(word, [10])] for text in texts]


@pytest.mark.parametrize(
	('shapes', 'layout', 'base', 'vectors', 'width'),
	[
		({'string_to_param.*': [4, 768]}, AssetLayout.A1111, ModelBase.SD1, 4, 768),
		({'emb_params': [2, 1024]}, AssetLayout.A1111, ModelBase.SD2, 2, 1024),
		({'<cat-toy>': [768]}, AssetLayout.CONCEPT, ModelBase.SD1, 1, 768),
		({'clip_l': [8, 768], 'clip_g': [8, 1280]}, AssetLayout.SDXL, ModelBase.SDXL, 8, 2048),
		({'emb_params': [3, 32]}, AssetLayout.A1111, ModelBase.UNKNOWN, 3, 32),
	],
)
def test_embedding_layouts_are_probed_from_their_shapes(
	shapes: dict[str, list[int]], layout: AssetLayout, base: ModelBase, vectors: int, width: int
) -> None:
	probe = probe_embedding_shapes(shapes)
	assert (probe.status, probe.layout, probe.base, probe.vectors, probe.width) == (
		ModelStatus.READY,
		layout,
		base,
		vectors,
		width,
	)


@pytest.mark.parametrize(
	'shapes',
	[
		{'a': [2, 8], 'b': [2, 8]},
		{'emb_params': [100, 768]},
		{'clip_l': [2, 768], 'clip_g': [3, 1280]},
		{'x': [1, 2, 3]},
	],
)
def test_what_is_not_an_embedding_is_invalid_with_the_reason(shapes: dict[str, list[int]]) -> None:
	probe = probe_embedding_shapes(shapes)
	assert probe.status is ModelStatus.INVALID
	assert probe.problem


def test_vae_layouts_and_what_is_not_a_vae() -> None:
	ldm = probe_vae_shapes({'decoder.conv_in.weight': [512, 4, 3, 3], 'decoder.mid.attn_1.q.weight': [512, 512, 1, 1]})
	assert (ldm.layout, ldm.width, ldm.status) == (AssetLayout.LDM, 4, ModelStatus.READY)
	cut_out = {'first_stage_model.decoder.conv_in.weight': [512, 16, 3, 3], 'first_stage_model.decoder.mid.x': [1]}
	assert probe_vae_shapes(cut_out).width == 16
	ours = probe_vae_shapes({'decoder.conv_in.weight': [64, 4, 3, 3], 'decoder.mid_block.resnets.0.x': [1]})
	assert ours.layout is AssetLayout.DIFFUSERS
	unet = probe_vae_shapes({'model.diffusion_model.input_blocks.0.0.weight': [320, 4, 3, 3]})
	assert unet.status is ModelStatus.INVALID
	assert 'not a VAE' in unet.problem


def test_an_embedding_takes_its_vectors_places_and_is_never_split() -> None:
	chunks = chunk_prompt(parse_attention('x (emb:1.5) x'), _tokenize, IDS, WORDS).chunks
	assert chunks[0].tokens[:6] == [1, 10, PLACEHOLDER, PLACEHOLDER, PLACEHOLDER, 10]
	assert chunks[0].weights[2:5] == [1.5] * 3
	assert [(fix.offset, fix.embedding, fix.vectors) for fix in chunks[0].fixes] == [(1, 'two-token', 3)]
	assert chunks[0].used == 5
	assert chunk_prompt(parse_attention('e x'), _tokenize, IDS, WORDS).chunks[0].fixes[0].embedding == 'one'
	near_end = chunk_prompt(parse_attention(' '.join(['x'] * 74) + ' emb'), _tokenize, IDS, WORDS).chunks
	assert [chunk.used for chunk in near_end] == [74, 3]  # 3 vectors do not fit the last place: the next chunk
	assert near_end[1].fixes[0].offset == 0
	assert chunk_prompt(parse_attention('big emb'), _tokenize, IDS).chunks[0].fixes == []  # no words: text


def test_the_comma_backtrack_moves_an_embedding_with_its_text() -> None:
	words = ['x'] * 60 + [','] + ['x'] * 5 + ['emb'] + ['x'] * 20
	chunks = chunk_prompt(parse_attention(' '.join(words)), _tokenize, IDS, WORDS).chunks
	assert [chunk.used for chunk in chunks] == [61, 28]
	assert chunks[0].fixes == []
	fix = chunks[1].fixes[0]
	assert chunks[1].tokens[1 + fix.offset : 1 + fix.offset + 3] == [PLACEHOLDER] * 3
	assert fix.offset == 5
	assert len(chunks[1].tokens) == CHUNK + 2


@pytest.mark.parametrize('layout', ['emb_params', 'pt', 'concept'])
def test_vectors_are_read_from_every_layout(tmp_path: Path, layout: str) -> None:
	vectors = random_vectors(2, 3)
	path = write_embedding(tmp_path / f'x.{"pt" if layout == "pt" else "safetensors"}', vectors, layout)
	read = vectors_of(read_tensors(path, allow_pickle=True), 'x')
	assert torch.equal(read[''], vectors)
	if layout == 'pt':
		assert probe_embedding_shapes(pickle_shapes(path)).layout is AssetLayout.A1111
		assert probe_asset_file(path, vae=False).status is ModelStatus.UNSAFE
		with pytest.raises(AssetNotApplicableError, match='pickles are not allowed'):
			read_tensors(path, allow_pickle=False)


def test_sdxl_vectors_come_per_encoder(tmp_path: Path) -> None:
	read = vectors_of(read_tensors(write_sdxl_embedding(tmp_path / 'xl.safetensors', 2), False), 'xl')
	assert (read['clip_l'].shape, read['clip_g'].shape) == ((2, 768), (2, 1280))
	assert probe_asset_file(tmp_path / 'xl.safetensors', vae=False).base is ModelBase.SDXL


def test_a_pickle_that_holds_code_is_refused_by_weights_only(tmp_path: Path) -> None:
	path = tmp_path / 'evil.pt'
	torch.save({'string_to_param': {'*': torch.zeros(1, 4)}, 'hook': print}, path)
	with pytest.raises(AssetNotApplicableError, match='weights_only'):
		read_tensors(path, allow_pickle=True)
	assert pickle_shapes(path) == {}


def test_a_float16_vae_that_overflows_is_decoded_again_in_float32() -> None:
	torch.manual_seed(0)
	blocks = ['DownEncoderBlock2D'] * 2
	vae = AutoencoderKL(
		block_out_channels=[32, 64], down_block_types=blocks, up_block_types=['UpDecoderBlock2D'] * 2, latent_channels=4
	)
	with torch.no_grad():
		vae.post_quant_conv.weight.mul_(1e4)  # overflows float16's range, not float32's
	latents = torch.randn(1, 4, 8, 8) * 10
	expected = vae.decode(latents).sample
	vae = vae.half()
	assert torch.isnan(vae.decode(latents.half()).sample).any()
	notices: list[str] = []
	decodes: list[int] = []
	with watched_decode(vae, notices, lambda: decodes.append(1)):
		fixed = vae.decode(latents.half()).sample
	assert not torch.isnan(fixed).any()
	assert fixed.dtype == torch.float16
	torch.testing.assert_close(fixed.float(), expected.half().float(), atol=2e-2, rtol=1e-2)
	assert notices == [UPCAST_NOTICE.format(dtype='float16')]
	assert vae.dtype == torch.float16  # back to float16 after the re-decode
	assert 'decode' not in vars(vae)  # the guard is gone after the call
	kept: list[str] = []
	with watched_decode(vae.float(), kept, lambda: decodes.append(1)):
		vae.decode(latents)
	assert kept == []
	assert decodes == [1, 1], 'each decode is reported once (the DECODING stage), the re-decode not again'


def test_a_vae_base_comes_from_its_modelspec_where_shapes_cannot_tell(tmp_path: Path) -> None:
	shapes = {'decoder.conv_in.weight': [512, 4, 3, 3], 'decoder.mid.attn_1.q.weight': [512, 512, 1, 1]}
	tagged = write_header(
		tmp_path / 'xl.safetensors', shapes, metadata={'modelspec.architecture': 'stable-diffusion-xl-v1-base/vae'}
	)
	assert probe_asset_file(tagged, vae=True).base is ModelBase.SDXL
	assert probe_asset_file(write_header(tmp_path / 'plain.safetensors', shapes), vae=True).base is ModelBase.UNKNOWN
