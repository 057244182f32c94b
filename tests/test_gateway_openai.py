"""OpenAI's images API through the real `openai` SDK on the real tiny pipeline: generations as b64_json and as URLs
served from history, edits with OpenAI's transparent-is-edited mask, the model list."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import openai
from PIL import Image

from diffusiond.server.app import Daemon
from tests.gateway_fixtures import base_url, noise_png, web
from tests.helpers import pixels

__all__ = ['web']


def _client(daemon: Daemon) -> openai.OpenAI:
	return openai.OpenAI(base_url=f'{base_url(daemon)}/v1', api_key='not-needed-here', max_retries=0)


async def test_generations_answer_b64_json_and_urls_from_history(web: Daemon) -> None:
	client = _client(web)
	made = await asyncio.to_thread(
		client.images.generate, model='dall-e-3', prompt='a red kite', n=2, size='64x64', response_format='b64_json'
	)
	assert made.data is not None
	assert len(made.data) == 2
	for item in made.data:
		assert item.b64_json is not None
		with Image.open(io.BytesIO(base64.b64decode(item.b64_json))) as image:
			assert image.size == (64, 64)
	linked = await asyncio.to_thread(client.images.generate, prompt='a red kite', size='64x64', response_format='url')
	assert linked.data is not None
	url = linked.data[0].url
	assert url is not None
	async with httpx.AsyncClient() as http:
		answer = await http.get(url)
	assert (answer.status_code, answer.headers['content-type']) == (200, 'image/png')
	assert Image.open(io.BytesIO(answer.content)).size == (64, 64)


async def test_an_edit_repaints_only_the_transparent_area(web: Daemon) -> None:
	source = noise_png(64, 64, seed=8)
	mask = Image.new('RGBA', (64, 64), (0, 0, 0, 255))
	mask.paste((0, 0, 0, 0), (0, 32, 64, 64))  # the lower half is transparent: edited
	buffer = io.BytesIO()
	mask.save(buffer, format='PNG')
	client = _client(web)
	edited = await asyncio.to_thread(
		client.images.edit,
		image=('photo.png', source, 'image/png'),
		mask=('mask.png', buffer.getvalue(), 'image/png'),
		prompt='a boat on the sea',
		size='64x64',
		response_format='b64_json',
	)
	assert edited.data is not None
	assert edited.data[0].b64_json is not None
	made = pixels(base64.b64decode(edited.data[0].b64_json))
	assert np.array_equal(made[:32], pixels(source)[:32]), 'the opaque half is kept exactly'
	assert not np.array_equal(made[32:], pixels(source)[32:]), 'the transparent half is repainted'


async def test_models_are_listed_as_openai_lists_them(web: Daemon) -> None:
	listed = await asyncio.to_thread(lambda: list(_client(web).models.list()))
	assert [(model.id, model.object, model.owned_by) for model in listed] == [('tiny-sd', 'model', 'diffusiond')]


async def test_openai_errors_have_openai_s_shape(web: Daemon) -> None:
	client = _client(web)
	try:
		await asyncio.to_thread(client.images.generate, model='no-such-model', prompt='x', size='64x64')
	except openai.NotFoundError as error:
		body = error.body
	else:
		raise AssertionError('an unknown model was accepted')
	assert isinstance(body, dict)
	assert body['code'] == 'MODEL_NOT_FOUND'
	assert body['type'] == 'not_found_error'
	async with httpx.AsyncClient(base_url=base_url(web)) as http:
		bad = await http.post('/v1/images/generations', json={'prompt': 'x', 'size': 'big'})
		no_alpha = await http.post(
			'/v1/images/edits', files={'image': ('a.png', noise_png(64, 64), 'image/png')}, data={'prompt': 'x'}
		)
	assert (bad.status_code, bad.json()['error']['param']) == (422, 'size')
	assert (no_alpha.status_code, no_alpha.json()['error']['param']) == (422, 'image')
