"""VAEs from the vaes folder through the stubs on the real tiny pipeline: both key layouts exactly as diffusers
decodes with that VAE, the model's own back exactly, a model default, the infotext, refusals."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.asset_files import random_vectors, write_embedding, write_vae
from tests.conftest import TINY_MODEL
from tests.helpers import Pixels, collect, error_details, pixels, rpc_error

PROMPT = 'a lighthouse'


@pytest.fixture(scope='module')
async def vae_files(daemon: Daemon, tiny_sd_dir: Path) -> Path:
	"""The model's own VAE as an A1111 file, a brighter one in both layouts, and a file that is no VAE."""
	folder = daemon.settings.storage.vaes_dir
	write_vae(tiny_sd_dir, folder / 'own-ldm.safetensors')
	write_vae(tiny_sd_dir, folder / 'bright.safetensors', scale=1.5)
	write_vae(tiny_sd_dir, folder / 'bright-diffusers', scale=1.5, ldm=False)
	write_embedding(folder / 'notavae.safetensors', random_vectors(1, 1))
	await daemon.assets.vaes.refresh()
	await daemon.hasher.hash_pending()
	return folder / 'bright-diffusers'


def _request(vae: str = '') -> gen_pb.GenerateRequest:
	return gen_pb.GenerateRequest(prompt=PROMPT, steps=3, seed=5, width=64, height=64, vae=vae)


async def _events(gen: gen_grpc.GenerationServiceAsyncStub, vae: str = '') -> list[gen_pb.GenerateEvent]:
	return await collect(gen.Generate(_request(vae)))


def _image(events: list[gen_pb.GenerateEvent]) -> Pixels:
	return pixels(next(event for event in events if event.HasField('image')).image.data)


async def test_a_vae_decodes_exactly_as_diffusers_with_it_and_the_own_comes_back(
	gen: gen_grpc.GenerationServiceAsyncStub, vae_files: Path, tiny_sd_dir: Path
) -> None:
	def direct() -> Pixels:
		vae = AutoencoderKL.from_pretrained(str(vae_files))
		pipe = StableDiffusionPipeline.from_pretrained(
			str(tiny_sd_dir), vae=vae, safety_checker=None, requires_safety_checker=False, local_files_only=True
		)
		pipe.set_progress_bar_config(disable=True)
		result = pipe(PROMPT, width=64, height=64, num_inference_steps=3, generator=[torch.Generator().manual_seed(5)])
		return np.asarray(result.images[0])

	expected = await asyncio.to_thread(direct)
	baseline = _image(await _events(gen))
	assert np.array_equal(_image(await _events(gen, 'own-ldm')), baseline), 'the LDM file of the own VAE = the own'
	bright = _image(await _events(gen, 'bright'))
	assert not np.array_equal(bright, baseline)
	assert np.array_equal(bright, expected), 'the LDM layout decodes as diffusers does with that VAE'
	assert np.array_equal(_image(await _events(gen, 'bright-diffusers')), expected), 'the diffusers layout too'
	assert np.array_equal(_image(await _events(gen)), baseline), 'no VAE asked: the own VAE, exactly'
	assert np.array_equal(_image(await _events(gen, 'none')), baseline)


async def test_the_infotext_names_the_vae_and_parses_back(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel, vae_files: Path
) -> None:
	listed = (await asset_grpc.AssetServiceStub(channel).ListVaes(asset_pb.ListVaesRequest())).vaes
	bright = next(item for item in listed if item.name == 'bright')
	assert (bright.layout, bright.width, len(bright.short_hash)) == ('ldm', 4, 10)
	assert next(item for item in listed if item.name == 'bright-diffusers').layout == 'diffusers'
	assert next(item for item in listed if item.name == 'notavae').status == model_pb.MODEL_STATUS_INVALID
	events = await _events(gen, 'bright')
	data = next(event for event in events if event.HasField('image')).image.data
	parameters = str(Image.open(io.BytesIO(data)).info['parameters'])
	assert f'Model: {TINY_MODEL}, VAE hash: {bright.short_hash}, VAE: bright.safetensors' in parameters
	parsed = await gen.ParseParameters(gen_pb.ParseParametersRequest(image=data))
	assert parsed.request.vae == 'bright'
	assert 'VAE' not in ' '.join(parsed.unknown)
	assert np.array_equal(_image(await collect(gen.Generate(parsed.request))), _image(events))


async def test_a_model_default_vae_applies_until_a_request_says_none(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel, vae_files: Path
) -> None:
	models = model_grpc.ModelServiceStub(channel)
	update = model_pb.UpdateModelRequest(model=model_pb.Model(name=TINY_MODEL))
	update.model.defaults.vae = 'bright'
	update.update_mask.paths.append('defaults')
	bright, own = _image(await _events(gen, 'bright')), _image(await _events(gen, 'none'))
	try:
		assert (await models.UpdateModel(update)).model.defaults.vae == 'bright'
		assert np.array_equal(_image(await _events(gen)), bright)
		assert np.array_equal(_image(await _events(gen, 'none')), own)
	finally:
		update.model.defaults.vae = ''
		await models.UpdateModel(update)
	assert np.array_equal(_image(await _events(gen)), own)


@pytest.mark.parametrize(
	('vae', 'code', 'reason', 'words'),
	[
		('nosuchvae', grpc.StatusCode.NOT_FOUND, 'VAE_NOT_FOUND', ['nosuchvae', 'vaes folder']),
		('notavae', grpc.StatusCode.FAILED_PRECONDITION, 'ASSET_INCOMPATIBLE', ['not a VAE']),
	],
)
async def test_a_vae_that_cannot_be_used_is_refused_before_queueing(
	gen: gen_grpc.GenerationServiceAsyncStub,
	vae_files: Path,
	vae: str,
	code: grpc.StatusCode,
	reason: str,
	words: list[str],
) -> None:
	error = await rpc_error(_events(gen, vae))
	assert error.code() == code
	assert error_details(error)[0].reason == reason
	assert all(word in (error.details() or '') for word in words)


async def test_a_default_vae_must_exist_and_one_deleted_later_falls_back_with_a_notice(
	gen: gen_grpc.GenerationServiceAsyncStub,
	channel: grpc.aio.Channel,
	daemon: Daemon,
	tiny_sd_dir: Path,
	vae_files: Path,
) -> None:
	models, assets = model_grpc.ModelServiceStub(channel), asset_grpc.AssetServiceStub(channel)
	update = model_pb.UpdateModelRequest(model=model_pb.Model(name=TINY_MODEL))
	update.update_mask.paths.append('defaults')
	for missing, code in (('nosuchvae', grpc.StatusCode.NOT_FOUND), ('notavae', grpc.StatusCode.FAILED_PRECONDITION)):
		update.model.defaults.vae = missing
		assert (await rpc_error(models.UpdateModel(update))).code() == code
	doomed = write_vae(tiny_sd_dir, daemon.settings.storage.vaes_dir / 'doomed.safetensors', scale=0.5)
	await assets.RefreshVaes(asset_pb.RefreshVaesRequest())
	own = _image(await _events(gen, 'none'))
	update.model.defaults.vae = 'doomed'
	try:
		await models.UpdateModel(update)
		assert not np.array_equal(_image(await _events(gen)), own)
		doomed.unlink()
		await assets.RefreshVaes(asset_pb.RefreshVaesRequest())
		events = await _events(gen)
		assert np.array_equal(_image(events), own), 'the model decodes with its own VAE'
		completed = next(event.completed for event in events if event.HasField('completed'))
		assert "default VAE 'doomed' cannot be used" in ' '.join(completed.notices)
	finally:
		update.model.defaults.vae = ''
		await models.UpdateModel(update)
