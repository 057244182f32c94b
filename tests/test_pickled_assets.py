"""Pickled embeddings and VAEs (A1111's .pt and .ckpt) where pickles are allowed: opened once on the worker with
weights_only=True, then exactly what their .safetensors twins give."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import numpy as np
import torch
from safetensors.torch import load_file

from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.asset_files import random_vectors, write_embedding, write_vae
from tests.conftest import TINY_MODEL, StartReal
from tests.helpers import Pixels, collect, pixels


async def _image(gen: gen_grpc.GenerationServiceAsyncStub, prompt: str, vae: str = '') -> Pixels:
	request = gen_pb.GenerateRequest(prompt=prompt, steps=2, seed=3, width=64, height=64, vae=vae)
	events = await collect(gen.Generate(request))
	return pixels(next(event for event in events if event.HasField('image')).image.data)


async def test_allowed_pickles_give_their_safetensors_twins_pixels(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	vectors = random_vectors(2, 4)
	write_embedding(tmp_path / 'embeddings' / 'pickled.pt', vectors, 'pt')
	write_embedding(tmp_path / 'embeddings' / 'twin.safetensors', vectors)
	safe = write_vae(tiny_sd_dir, tmp_path / 'vaes' / 'bright.safetensors', scale=1.4)
	torch.save({'state_dict': load_file(safe), 'global_step': 1}, tmp_path / 'vaes' / 'brightpt.ckpt')
	daemon = await start_real({'models': {'allow_pickle': True}})
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		gen, assets = gen_grpc.GenerationServiceStub(channel), asset_grpc.AssetServiceStub(channel)
		before = {
			item.name: item for item in (await assets.ListEmbeddings(asset_pb.ListEmbeddingsRequest())).embeddings
		}
		assert (before['pickled'].status, before['pickled'].vectors) == (model_pb.MODEL_STATUS_UNSAFE, 0)
		twin = await _image(gen, 'a fox twin')
		assert np.array_equal(await _image(gen, 'a fox pickled'), twin)
		after = {item.name: item for item in (await assets.ListEmbeddings(asset_pb.ListEmbeddingsRequest())).embeddings}
		opened = after['pickled']
		assert (opened.status, opened.vectors, opened.layout, opened.pickle) == (
			model_pb.MODEL_STATUS_READY,
			2,
			'a1111',
			True,
		)
		bright = await _image(gen, 'a fox', 'bright')
		assert not np.array_equal(bright, await _image(gen, 'a fox'))
		assert np.array_equal(await _image(gen, 'a fox', 'brightpt'), bright)
