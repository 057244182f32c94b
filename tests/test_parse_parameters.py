"""ParseParameters: the parameters of images made here, by A1111 (text) and by ComfyUI (its workflow JSON), read
with sd-parsers into a GenerateRequest that runs here."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import collect, pixels, rpc_error

A1111 = (
	'a (red:1.2) fox <lora:detail:0.6>\n'
	'Negative prompt: blurry, lowres\n'
	'Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, '
	'Model hash: 0123456789, Model: sd15/dream, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, '
	'Denoising strength: 0.55, Clip skip: 2, TI hashes: "EasyNegative: 66a7279a88dd", ENSD: 31337, Version: v1.10.1'
)
COMFY_PROMPT = {
	'3': {
		'class_type': 'KSampler',
		'inputs': {
			'seed': 42,
			'steps': 20,
			'cfg': 7.0,
			'sampler_name': 'euler_ancestral',
			'scheduler': 'normal',
			'denoise': 1.0,
			'model': ['4', 0],
			'positive': ['6', 0],
			'negative': ['7', 0],
			'latent_image': ['5', 0],
		},
	},
	'4': {'class_type': 'CheckpointLoaderSimple', 'inputs': {'ckpt_name': 'v1-5-pruned-emaonly.safetensors'}},
	'5': {'class_type': 'EmptyLatentImage', 'inputs': {'width': 512, 'height': 640, 'batch_size': 1}},
	'6': {'class_type': 'CLIPTextEncode', 'inputs': {'text': 'a fox in the snow', 'clip': ['4', 1]}},
	'7': {'class_type': 'CLIPTextEncode', 'inputs': {'text': 'blurry', 'clip': ['4', 1]}},
	'8': {'class_type': 'VAEDecode', 'inputs': {'samples': ['3', 0], 'vae': ['4', 2]}},
	'9': {'class_type': 'SaveImage', 'inputs': {'filename_prefix': 'ComfyUI', 'images': ['8', 0]}},
}
COMFY_LINKS = [  # the UI workflow's links: id, from node, slot, to node, slot, type
	[1, 4, 0, 3, 0, 'MODEL'],
	[2, 6, 0, 3, 1, 'CONDITIONING'],
	[3, 7, 0, 3, 2, 'CONDITIONING'],
	[4, 5, 0, 3, 3, 'LATENT'],
	[5, 4, 1, 6, 0, 'CLIP'],
	[6, 4, 1, 7, 0, 'CLIP'],
	[7, 3, 0, 8, 0, 'LATENT'],
	[8, 4, 2, 8, 1, 'VAE'],
	[9, 8, 0, 9, 0, 'IMAGE'],
]


def _png(**texts: str) -> bytes:
	info = PngImagePlugin.PngInfo()
	for key, value in texts.items():
		info.add_text(key, value)
	buffer = io.BytesIO()
	Image.new('RGB', (16, 16), 'white').save(buffer, 'PNG', pnginfo=info)
	return buffer.getvalue()


async def test_an_image_made_here_parses_into_the_request_that_made_it(
	gen: gen_grpc.GenerationServiceAsyncStub,
) -> None:
	request = gen_pb.GenerateRequest(
		prompt='a fox', negative_prompt='snow', steps=3, width=64, height=64, seed=77, guidance_scale=6.0
	)
	request.sampler = gen_pb.SAMPLER_EULER_A
	events = await collect(gen.Generate(request))
	image = next(event for event in events if event.HasField('image')).image.data
	parsed = await gen.ParseParameters(gen_pb.ParseParametersRequest(image=image))
	assert parsed.generator == 'AUTOMATIC1111', 'our infotext is A1111s'
	again = parsed.request
	assert (again.prompt, again.negative_prompt, again.steps, again.seed) == ('a fox', 'snow', 3, 77)
	assert (again.width, again.height, again.guidance_scale, again.sampler) == (64, 64, 6.0, gen_pb.SAMPLER_EULER_A)
	rerun = await collect(gen.Generate(again))
	assert np.array_equal(pixels(next(e for e in rerun if e.HasField('image')).image.data), pixels(image))


async def test_a_pasted_a1111_infotext_and_a_comfyui_image(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	a1111 = await gen.ParseParameters(gen_pb.ParseParametersRequest(text=A1111))
	request = a1111.request
	assert request.prompt == 'a (red:1.2) fox <lora:detail:0.6>', 'weights and LoRA tags stay in the prompt'
	assert request.negative_prompt == 'blurry, lowres'
	assert (request.steps, request.seed, request.width, request.height) == (24, 1234, 512, 768)
	assert (request.sampler, request.clip_skip, request.model) == (gen_pb.SAMPLER_DPMPP_2M_KARRAS, 2, 'sd15/dream')
	assert request.guidance_scale == 6.5
	assert abs(request.strength - 0.55) < 1e-6
	assert 'ensd: 31337' in a1111.unknown, 'kept, as sd-parsers names it'
	assert request.vae == 'vae-ft-mse-840000-ema-pruned', 'the VAE by its catalog name (the file name, no suffix)'
	assert not [entry for entry in a1111.unknown if 'vae' in entry.lower() or 'ti hashes' in entry.lower()]
	workflow = json.dumps({'nodes': [], 'links': COMFY_LINKS})
	comfy = await gen.ParseParameters(
		gen_pb.ParseParametersRequest(image=_png(prompt=json.dumps(COMFY_PROMPT), workflow=workflow))
	)
	assert comfy.generator == 'COMFYUI'
	got = comfy.request
	assert (got.prompt, got.negative_prompt, got.seed, got.steps) == ('a fox in the snow', 'blurry', 42, 20)
	assert (got.width, got.height, got.sampler) == (512, 640, gen_pb.SAMPLER_EULER_A)
	assert got.model == 'v1-5-pruned-emaonly.safetensors'
	assert not got.HasField('strength'), 'denoise 1.0 is text-to-image'


async def test_bad_input_gets_a_precise_status(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	for request, words in (
		(gen_pb.ParseParametersRequest(), 'an image or a text'),
		(gen_pb.ParseParametersRequest(image=b'png?', text='x'), 'an image or a text'),
		(gen_pb.ParseParametersRequest(image=b'not an image'), 'is not a readable PNG'),
		(gen_pb.ParseParametersRequest(image=_png(comment='hello')), 'no generation parameters'),
		(gen_pb.ParseParametersRequest(text='just a prompt'), 'not an A1111 infotext'),
	):
		error = await rpc_error(gen.ParseParameters(request))
		assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, words
		assert words in str(error.details())


async def test_png_info_prints_the_request(
	daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
	target = tmp_path / 'comfy.png'
	target.write_bytes(_png(prompt=json.dumps(COMFY_PROMPT), workflow=json.dumps({'nodes': [], 'links': COMFY_LINKS})))
	base = ['--address', f'127.0.0.1:{daemon.port}', 'png-info']
	assert await asyncio.to_thread(ctl, [*base, str(target)]) == 0
	out = capsys.readouterr().out
	assert out.startswith('made by COMFYUI\n')
	assert '"prompt": "a fox in the snow"' in out
	monkeypatch.setattr('sys.stdin', io.StringIO(A1111))
	assert await asyncio.to_thread(ctl, ['--json', *base, '-']) == 0
	assert json.loads(capsys.readouterr().out)['request']['clipSkip'] == 2


async def test_a_schedule_type_parses_into_the_request_and_runs_again_exactly(
	gen: gen_grpc.GenerationServiceAsyncStub,
) -> None:
	request = gen_pb.GenerateRequest(prompt='a fox', steps=3, width=64, height=64, seed=5, guidance_scale=1.0)
	request.sampler, request.schedule = gen_pb.SAMPLER_LCM, gen_pb.SCHEDULE_SGM_UNIFORM
	image = next(event for event in await collect(gen.Generate(request)) if event.HasField('image')).image.data
	parsed = await gen.ParseParameters(gen_pb.ParseParametersRequest(image=image))
	mismatched = await gen.ParseParameters(
		gen_pb.ParseParametersRequest(text='a fox\nSteps: 4, Sampler: DDIM, Schedule type: Exponential, Seed: 1')
	)
	assert (parsed.request.sampler, parsed.request.schedule) == (gen_pb.SAMPLER_LCM, gen_pb.SCHEDULE_SGM_UNIFORM)
	rerun = await collect(gen.Generate(parsed.request))
	assert np.array_equal(pixels(next(e for e in rerun if e.HasField('image')).image.data), pixels(image))
	assert mismatched.request.schedule == gen_pb.SCHEDULE_UNSPECIFIED
	assert 'Schedule type: Exponential' in mismatched.unknown, 'DDIM takes no sigma schedule: kept as unknown'
