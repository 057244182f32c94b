"""LoRAs in Generate on the real tiny pipeline: exactness, no residue, both layouts, refusals, triggers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc
from tests.checkpoints import fake_lora, write_header
from tests.helpers import Pixels, collect, error_details, next_of, pixels, until_error
from tests.lora_files import write_kohya, write_tiny_lora

PROMPT = 'a fox'


@pytest.fixture(scope='module')
def lora_files(daemon: Daemon) -> Path:
	"""The tiny LoRA (diffusers layout), its kohya twin, a second LoRA and an SD1 one, in the daemon's loras folder."""
	folder = daemon.settings.storage.loras_dir
	source = write_tiny_lora(folder / 'tiny-lora.safetensors')
	write_kohya(source, folder / 'tiny-lora-kohya.safetensors')
	write_tiny_lora(folder / 'tiny-other.safetensors', seed=9)
	fake_lora(folder / 'sd1-style.safetensors', 'sd1')
	attn = 'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k'
	write_header(folder / 'empty.safetensors', {f'{attn}.lora_down.weight': [4, 32], f'{attn}.lora_up.weight': [64, 4]})
	return source


def _request(*loras: tuple[str, float], steps: int = 3) -> gen_pb.GenerateRequest:
	refs = [gen_pb.LoraRef(lora=name, weight=weight) for name, weight in loras]
	return gen_pb.GenerateRequest(prompt=PROMPT, steps=steps, seed=11, width=64, height=64, loras=refs)


async def _image(gen: gen_grpc.GenerationServiceAsyncStub, request: gen_pb.GenerateRequest) -> Pixels:
	events = await collect(gen.Generate(request))
	return pixels(next(event for event in events if event.HasField('image')).image.data)


async def test_weight_zero_removal_and_layouts_are_exact(
	gen: gen_grpc.GenerationServiceAsyncStub, lora_files: Path
) -> None:
	baseline = await _image(gen, _request())
	with_lora = await _image(gen, _request(('tiny-lora', 1.0)))
	assert not np.array_equal(baseline, with_lora), 'a LoRA at weight 1 changes the output'
	assert np.array_equal(await _image(gen, _request(('tiny-lora', 0.0))), baseline), 'weight 0 = no LoRA'
	assert np.array_equal(await _image(gen, _request()), baseline), 'no residue after a LoRA job'
	assert np.array_equal(await _image(gen, _request(('tiny-lora-kohya', 1.0))), with_lora), 'kohya = diffusers'
	both = await _image(gen, _request(('tiny-lora', 0.6), ('tiny-other', 0.9)))
	assert not np.array_equal(both, with_lora)
	assert np.array_equal(await _image(gen, _request(('tiny-other', 0.9), ('tiny-lora', 0.6))), both)
	assert np.array_equal(await _image(gen, _request()), baseline)


async def test_a_lora_matches_a_direct_diffusers_call(
	gen: gen_grpc.GenerationServiceAsyncStub, lora_files: Path, tiny_sd_dir: Path
) -> None:
	def direct() -> Pixels:
		pipe = StableDiffusionPipeline.from_pretrained(
			str(tiny_sd_dir), safety_checker=None, requires_safety_checker=False
		)
		pipe.set_progress_bar_config(disable=True)
		pipe.load_lora_weights(str(lora_files), adapter_name='x')
		pipe.set_adapters(['x'], adapter_weights=[0.8])
		image = pipe(PROMPT, width=64, height=64, num_inference_steps=3, generator=[torch.Generator().manual_seed(11)])
		return np.asarray(image.images[0])

	expected = await asyncio.to_thread(direct)
	assert np.array_equal(await _image(gen, _request(('tiny-lora', 0.8))), expected)


async def test_no_residue_after_a_cancelled_or_failed_job(
	gen: gen_grpc.GenerationServiceAsyncStub, lora_files: Path
) -> None:
	baseline = await _image(gen, _request())
	call = gen.Generate(_request(('tiny-lora', 1.0), steps=150))
	first = await next_of(call, 'progress')
	listed = (await gen.ListJobs(gen_pb.ListJobsRequest())).jobs
	assert [(lora.name, lora.weight) for job in listed for lora in job.loras] == [('tiny-lora', 1.0)]
	await gen.CancelJob(gen_pb.CancelJobRequest(job_id=first.job_id))
	assert (await until_error(call))[1].code() == grpc.StatusCode.CANCELLED
	assert np.array_equal(await _image(gen, _request()), baseline)
	_, failed = await until_error(gen.Generate(_request(('tiny-lora', 1.0), ('empty', 1.0))))
	assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
	assert "'empty'" in str(failed.details())
	assert np.array_equal(await _image(gen, _request()), baseline)


async def test_the_loras_attached_to_a_loaded_model_are_known_for_claims(
	gen: gen_grpc.GenerationServiceAsyncStub, lora_files: Path, daemon: Daemon
) -> None:
	await _image(gen, _request(('tiny-other', 0.7), ('tiny-lora', 0.4)))
	warm = daemon.manager.warm()
	await _image(gen, _request())
	still = daemon.manager.warm()
	assert {'tiny-other', 'tiny-lora'} <= warm[next(iter(warm))], 'what a shared queue prefers to claim (choice.py)'
	assert still == warm, 'a job without LoRAs disables them; they stay attached'


async def test_refusals_before_the_job_runs(
	gen: gen_grpc.GenerationServiceAsyncStub, lora_files: Path, channel: grpc.aio.Channel
) -> None:
	cases = [
		(_request(('sd1-style', 1.0)), grpc.StatusCode.FAILED_PRECONDITION, 'made for SD1'),
		(_request(('nope', 1.0)), grpc.StatusCode.NOT_FOUND, 'loras list'),
		(_request(('tiny-lora', 2.5)), grpc.StatusCode.INVALID_ARGUMENT, 'between -2 and 2'),
		(_request(('tiny-lora', 1.0), ('tiny-lora', 0.5)), grpc.StatusCode.INVALID_ARGUMENT, 'named twice'),
	]
	for request, code, words in cases:
		_, error = await until_error(gen.Generate(request))
		assert error.code() == code
		assert words in str(error.details())
	_, incompatible = await until_error(gen.Generate(_request(('sd1-style', 1.0))))
	assert error_details(incompatible)[0].reason == 'LORA_INCOMPATIBLE'
	assert 'tiny-sd' in str(incompatible.details())
	stub = lora_grpc.LoraServiceStub(channel)
	disable = lora_pb.BatchUpdateLorasRequest(loras=['tiny-other'], action=lora_pb.BATCH_ACTION_DISABLE)
	await stub.BatchUpdateLoras(disable)
	_, disabled = await until_error(gen.Generate(_request(('tiny-other', 1.0))))
	assert 'disabled' in str(disabled.details())
	await stub.BatchUpdateLoras(
		lora_pb.BatchUpdateLorasRequest(loras=['tiny-other'], action=lora_pb.BATCH_ACTION_ENABLE)
	)


async def test_started_records_the_loras_and_trigger_words(
	gen: gen_grpc.GenerationServiceAsyncStub, lora_files: Path, channel: grpc.aio.Channel
) -> None:
	stub = lora_grpc.LoraServiceStub(channel)
	lora = lora_pb.Lora(id='tiny-lora', trigger_words=['foxy', 'Fox'], default_weight=0.5)
	update = lora_pb.UpdateLoraRequest(lora=lora)
	update.update_mask.paths.extend(['trigger_words', 'default_weight'])
	await stub.UpdateLora(update)
	request = gen_pb.GenerateRequest(
		prompt=PROMPT, steps=2, seed=1, loras=[gen_pb.LoraRef(lora='tiny-lora')], add_trigger_words=True
	)
	started = (await next_of(gen.Generate(request), 'started')).started
	assert started.prompt == 'a fox, foxy'  # 'Fox' is in the prompt already
	assert [(item.name, item.weight) for item in started.loras] == [('tiny-lora', 0.5)]
