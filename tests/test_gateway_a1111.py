"""The A1111 web API through the real `webuiapi` client on the real tiny pipeline: txt2img and img2img with a mask give
exactly the pixels gRPC Generate gives for the same parameters, models are listed and switched, samplers listed,
png-info read back; the job is in history and gRPC sees it."""

from __future__ import annotations

import asyncio
import base64
import io

import grpc
import httpx
import numpy as np
import torch
import webuiapi
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.gateway_fixtures import base_url, noise_png, web
from tests.helpers import Pixels, collect, pixels
from tests.upscaler_files import rrdb_x4

__all__ = ['web']  # the fixture, imported for pytest
PROMPT = 'a lighthouse at dawn'


def _api(daemon: Daemon) -> webuiapi.WebUIApi:
	assert daemon.http is not None
	return webuiapi.WebUIApi(host='127.0.0.1', port=daemon.http.port, sampler='Euler a', steps=3)


async def _grpc_image(daemon: Daemon, request: gen_pb.GenerateRequest) -> Pixels:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		events = await collect(gen_grpc.GenerationServiceStub(channel).Generate(request))
	return pixels(next(event.image.data for event in events if event.HasField('image')))


async def test_webuiapi_txt2img_is_exactly_the_grpc_image(web: Daemon) -> None:
	api = await asyncio.to_thread(_api, web)
	result = await asyncio.to_thread(api.txt2img, prompt=PROMPT, seed=5, width=64, height=64, cfg_scale=6.0)
	request = gen_pb.GenerateRequest(
		prompt=PROMPT, seed=5, width=64, height=64, steps=3, guidance_scale=6.0, sampler=gen_pb.SAMPLER_EULER_A
	)
	assert np.array_equal(np.asarray(result.image.convert('RGB')), await _grpc_image(web, request))
	assert result.info['all_seeds'] == [5]
	assert (result.info['sampler_name'], result.info['steps'], result.info['sd_model_name']) == (
		'Euler a',
		3,
		'tiny-sd',
	)
	assert 'Seed: 5' in result.info['infotexts'][0]
	assert result.parameters['prompt'] == PROMPT
	async with grpc.aio.insecure_channel(f'127.0.0.1:{web.port}') as channel:
		history = history_grpc.HistoryServiceStub(channel)
		record = await history.GetGeneration(history_pb.GetGenerationRequest(id=result.info['job_id']))
	assert record.generation.prompt == PROMPT


async def test_webuiapi_img2img_with_a_mask_is_exactly_grpc_inpainting(web: Daemon) -> None:
	init = noise_png(64, 64, seed=1)
	mask = Image.new('L', (64, 64), 0)
	mask.paste(255, (16, 16, 48, 48))
	buffer = io.BytesIO()
	mask.save(buffer, format='PNG')
	api = await asyncio.to_thread(_api, web)
	result = await asyncio.to_thread(
		api.img2img,
		images=[Image.open(io.BytesIO(init))],
		mask_image=mask,
		inpaint_full_res=False,
		denoising_strength=0.6,
		prompt=PROMPT,
		seed=3,
		width=64,
		height=64,
		steps=4,
	)
	request = gen_pb.GenerateRequest(
		prompt=PROMPT,
		seed=3,
		width=64,
		height=64,
		steps=4,
		guidance_scale=7.0,
		sampler=gen_pb.SAMPLER_EULER_A,
		init_image=init,
		mask_image=buffer.getvalue(),
		strength=0.6,
		mask_blur=4,
	)
	made = np.asarray(result.image.convert('RGB'))
	assert np.array_equal(made, await _grpc_image(web, request))
	assert np.array_equal(made[:2], pixels(init)[:2]), 'what the mask keeps (beyond its blur) comes back exactly'
	assert 'init_images' not in result.parameters
	assert result.info['denoising_strength'] == 0.6


async def test_models_are_listed_and_switched_as_webuiapi_does(web: Daemon) -> None:
	api = await asyncio.to_thread(_api, web)
	titles = await asyncio.to_thread(api.util_get_model_names)
	assert any(title.startswith('tiny-sd') for title in titles)
	await asyncio.to_thread(api.util_set_model, 'tiny-sd')
	assert (await asyncio.to_thread(api.util_get_current_model)) in titles
	samplers = await asyncio.to_thread(api.util_get_sampler_names)
	assert {'Euler a', 'DPM++ 2M Karras', 'DDIM'} <= set(samplers)
	assert 'karras' in await asyncio.to_thread(api.util_get_scheduler_names)


async def test_a1111_schedulers_are_schedules(web: Daemon) -> None:
	api = await asyncio.to_thread(_api, web)
	assert {'automatic', 'sgm_uniform', 'karras', 'exponential', 'beta', 'uniform'} <= set(
		await asyncio.to_thread(api.util_get_scheduler_names)
	)
	result = await asyncio.to_thread(
		api.txt2img,
		prompt=PROMPT,
		seed=8,
		width=64,
		height=64,
		sampler_name='LCM',
		cfg_scale=1.0,
		scheduler='SGM Uniform',
	)
	request = gen_pb.GenerateRequest(
		prompt=PROMPT,
		seed=8,
		width=64,
		height=64,
		steps=3,
		guidance_scale=1.0,
		sampler=gen_pb.SAMPLER_LCM,
		schedule=gen_pb.SCHEDULE_SGM_UNIFORM,
	)
	assert np.array_equal(np.asarray(result.image.convert('RGB')), await _grpc_image(web, request))
	assert 'Sampler: LCM, Schedule type: SGM Uniform' in result.info['infotexts'][0]
	assert web.http is not None
	async with httpx.AsyncClient(base_url=base_url(web)) as client:
		unknown = await client.post('/sdapi/v1/txt2img', json={'prompt': PROMPT, 'scheduler': 'align_your_steps'})
		mismatched = await client.post(
			'/sdapi/v1/txt2img', json={'prompt': PROMPT, 'sampler_name': 'DDIM', 'scheduler': 'Karras'}
		)
	assert unknown.status_code == 422
	assert 'unknown scheduler' in unknown.text
	assert mismatched.status_code == 422
	assert 'does not use' in mismatched.text


async def test_png_info_reads_what_txt2img_wrote(web: Daemon) -> None:
	api = await asyncio.to_thread(_api, web)
	made = await asyncio.to_thread(api.txt2img, prompt=PROMPT, seed=11, width=64, height=64, steps=2)
	info = await asyncio.to_thread(api.png_info, made.image)
	assert str(info.info).startswith(PROMPT)
	assert (info.parameters['Seed'], info.parameters['Steps'], info.parameters['Size-1']) == (11, 2, 64)


async def test_the_listings_answer_in_a1111_s_shapes(web: Daemon) -> None:
	async with httpx.AsyncClient(base_url=base_url(web)) as client:
		upscalers = (await client.get('/sdapi/v1/upscalers')).json()
		modes = (await client.get('/sdapi/v1/latent-upscale-modes')).json()
		memory = (await client.get('/sdapi/v1/memory')).json()
		embeddings = (await client.get('/sdapi/v1/embeddings')).json()
		for path in ('/sdapi/v1/loras', '/sdapi/v1/prompt-styles', '/sdapi/v1/sd-vae', '/sdapi/v1/scripts'):
			assert (await client.get(path)).status_code == 200
		for path in ('/sdapi/v1/refresh-checkpoints', '/sdapi/v1/refresh-loras', '/sdapi/v1/refresh-vae'):
			assert (await client.post(path)).status_code == 200
		progress = (await client.get('/sdapi/v1/progress')).json()
	assert [row['name'] for row in upscalers][:3] == ['None', 'Lanczos', 'Nearest']
	assert {'name': 'Latent'} in modes
	assert memory['ram']['total'] > 0
	assert set(embeddings) == {'loaded', 'skipped'}
	assert (progress['progress'], progress['state']['job_count']) == (0.0, 0)


async def test_hires_and_extras_run_through_the_same_tasks(web: Daemon) -> None:
	api = await asyncio.to_thread(_api, web)
	result = await asyncio.to_thread(
		api.txt2img,
		prompt=PROMPT,
		seed=2,
		width=64,
		height=64,
		steps=2,
		enable_hr=True,
		hr_scale=1.5,
		hr_upscaler='Lanczos',
		denoising_strength=0.5,
	)
	assert result.image.size == (96, 96)
	assert 'Hires upscaler: Lanczos' in result.info['infotexts'][0]
	source = Image.open(io.BytesIO(noise_png(24, 16)))
	upscaled = await asyncio.to_thread(api.extra_single_image, source, upscaler_1='Lanczos', upscaling_resize=2)
	expected = source.convert('RGB').resize((48, 32), resample=Image.Resampling.LANCZOS)
	assert np.array_equal(np.asarray(upscaled.image.convert('RGB')), np.asarray(expected))


async def test_a_precondition_is_400_with_the_reason(web: Daemon) -> None:
	folder = web.settings.storage.upscalers_dir
	await asyncio.to_thread(torch.save, {'params_ema': rrdb_x4(0)}, folder / 'old.pth')
	await web.assets.upscalers.refresh()
	body = {'image': base64.b64encode(noise_png(16, 16)).decode(), 'upscaler_1': 'old', 'upscaling_resize': 2}
	async with httpx.AsyncClient(base_url=base_url(web)) as client:
		answer = await client.post('/sdapi/v1/extra-single-image', json=body)
	assert (answer.status_code, answer.json()['error']) == (400, 'ASSET_INCOMPATIBLE')
	assert 'pickle' in answer.json()['detail']
