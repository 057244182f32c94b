"""Textual-inversion embeddings through the stubs on the real tiny pipeline: exactly diffusers' own textual
inversion, removed exactly, in either prompt, reported, hashed in the infotext, refused for another base."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.asset_files import random_vectors, write_embedding
from tests.helpers import Pixels, collect, error_details, pixels, rpc_error

PROMPT = 'a fox'


@pytest.fixture(scope='module')
async def embeddings(daemon: Daemon) -> Path:
	folder = daemon.settings.storage.embeddings_dir
	path = write_embedding(folder / 'tinyemb.safetensors', random_vectors(2, 7))
	write_embedding(folder / 'sub' / 'onevec.safetensors', random_vectors(1, 8), 'concept')
	write_embedding(folder / 'widesd2.safetensors', random_vectors(2, 9, 1024))
	write_embedding(folder / 'picklemb.pt', random_vectors(1, 10), 'pt')
	await daemon.assets.embeddings.refresh()
	await daemon.hasher.hash_pending()
	return path


def _request(prompt: str = PROMPT, negative: str = '') -> gen_pb.GenerateRequest:
	return gen_pb.GenerateRequest(prompt=prompt, negative_prompt=negative, steps=3, seed=21, width=64, height=64)


async def _run(gen: gen_grpc.GenerationServiceAsyncStub, request: gen_pb.GenerateRequest) -> list[gen_pb.GenerateEvent]:
	return await collect(gen.Generate(request))


def _image(events: list[gen_pb.GenerateEvent]) -> Pixels:
	return pixels(next(event for event in events if event.HasField('image')).image.data)


async def test_an_embedding_is_exactly_diffusers_textual_inversion(
	gen: gen_grpc.GenerationServiceAsyncStub, embeddings: Path, tiny_sd_dir: Path
) -> None:
	def direct() -> Pixels:
		pipe = StableDiffusionPipeline.from_pretrained(
			str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False, local_files_only=True
		)
		pipe.set_progress_bar_config(disable=True)
		pipe.load_textual_inversion(str(embeddings), token='tinyemb')
		image = pipe(
			f'{PROMPT} tinyemb',
			width=64,
			height=64,
			num_inference_steps=3,
			generator=[torch.Generator().manual_seed(21)],
		)
		return np.asarray(image.images[0])

	expected = await asyncio.to_thread(direct)
	baseline = _image(await _run(gen, _request()))
	served = _image(await _run(gen, _request(f'{PROMPT} TinyEmb')))  # tokens are matched, case as CLIP reads it
	assert not np.array_equal(served, baseline)
	assert np.array_equal(served, expected)
	assert np.array_equal(_image(await _run(gen, _request())), baseline), 'removed exactly after a job with it'


@pytest.fixture
def assets(channel: grpc.aio.Channel) -> asset_grpc.AssetServiceAsyncStub:
	return asset_grpc.AssetServiceStub(channel)


def _parameters(events: list[gen_pb.GenerateEvent]) -> str:
	image = Image.open(io.BytesIO(next(event for event in events if event.HasField('image')).image.data))
	return str(image.info['parameters'])


async def test_embeddings_in_the_negative_prompt_are_reported_and_hashed(
	gen: gen_grpc.GenerationServiceAsyncStub, assets: asset_grpc.AssetServiceAsyncStub, embeddings: Path
) -> None:
	plain = _image(await _run(gen, _request(negative='blurry')))
	events = await _run(gen, _request(f'{PROMPT}, onevec', 'blurry tinyemb'))
	assert not np.array_equal(_image(events), plain)
	started = next(event.started for event in events if event.HasField('started'))
	assert list(started.prompt_report.embeddings) == ['onevec']
	assert list(started.negative_prompt_report.embeddings) == ['tinyemb']
	without = await gen.TokenizePrompt(gen_pb.TokenizePromptRequest(prompt=f'{PROMPT},'))
	assert started.prompt_report.token_count == without.prompt.token_count + 1  # one vector in one place
	listed = (await assets.ListEmbeddings(asset_pb.ListEmbeddingsRequest())).embeddings
	short = {item.name.split('/')[-1]: item.short_hash for item in listed}
	assert len(short['tinyemb']) == 12
	assert f'TI hashes: "onevec: {short["onevec"]}, tinyemb: {short["tinyemb"]}"' in _parameters(events)


async def test_embeddings_are_listed_with_base_vectors_and_hashes(
	assets: asset_grpc.AssetServiceAsyncStub, embeddings: Path
) -> None:
	listed = {item.name: item for item in (await assets.ListEmbeddings(asset_pb.ListEmbeddingsRequest())).embeddings}
	assert {'tinyemb', 'sub/onevec', 'widesd2', 'picklemb'} <= set(listed)
	tiny = listed['tinyemb']
	assert (tiny.vectors, tiny.width, tiny.layout, tiny.status) == (2, 32, 'a1111', model_pb.MODEL_STATUS_READY)
	assert tiny.sha256.startswith(tiny.short_hash)
	assert listed['sub/onevec'].layout == 'concept'
	assert (listed['widesd2'].base, listed['widesd2'].width) == (model_pb.MODEL_BASE_SD2, 1024)
	assert (listed['picklemb'].status, listed['picklemb'].pickle) == (model_pb.MODEL_STATUS_UNSAFE, True)
	sd2 = await assets.ListEmbeddings(asset_pb.ListEmbeddingsRequest(base=model_pb.MODEL_BASE_SD2))
	assert [item.name for item in sd2.embeddings] == ['widesd2']
	refreshed = await assets.RefreshEmbeddings(asset_pb.RefreshEmbeddingsRequest())
	assert refreshed.unchanged >= 4
	assert refreshed.added == 0


@pytest.mark.parametrize(
	('prompt', 'reason', 'words'),
	[
		(f'{PROMPT} widesd2', 'ASSET_INCOMPATIBLE', ['widesd2', 'SD2']),
		(f'{PROMPT} picklemb', 'ASSET_INCOMPATIBLE', ['pickle', 'ALLOW_PICKLE']),
	],
)
async def test_an_embedding_that_cannot_be_used_is_refused_before_queueing(
	gen: gen_grpc.GenerationServiceAsyncStub, embeddings: Path, prompt: str, reason: str, words: list[str]
) -> None:
	error = await rpc_error(_run(gen, _request(negative=prompt)))
	assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
	info, _ = error_details(error)
	assert info.reason == reason
	assert all(word in (error.details() or '') for word in words)


async def test_tokenize_prompt_names_the_embeddings(gen: gen_grpc.GenerationServiceAsyncStub, embeddings: Path) -> None:
	found = await gen.TokenizePrompt(gen_pb.TokenizePromptRequest(prompt='tinyemb, (onevec:1.2)', negative_prompt='x'))
	assert list(found.prompt.embeddings) == ['tinyemb', 'onevec']
	assert found.prompt.token_count == 4
	assert list(found.negative_prompt.embeddings) == []
