"""diffusionctl over the rest of history and styles: update, image, usage; and the client surface parity."""

import asyncio
import inspect
import json
from pathlib import Path

import pytest

from diffusiond.client import AsyncClient, Client
from diffusiond.client.cli import main as ctl
from tests.conftest import StartDaemon


async def test_history_update_image_usage_and_style_update(
	start_fake: StartDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
	daemon = await start_fake()
	address = f'127.0.0.1:{daemon.port}'
	async with AsyncClient(address) as client:
		job = [event async for event in client.generate('a fox', steps=2, num_images=2)][-1].job_id

	def run(*argv: str) -> int:
		return ctl(['--address', address, *argv])

	assert (
		await asyncio.to_thread(run, 'history', 'update', job, '--favourite', '--tags', 'best,fox', '--note', 'hi') == 0
	)
	out = tmp_path / 'second.png'
	assert await asyncio.to_thread(run, 'history', 'image', job, '--index', '1', '-o', str(out)) == 0
	thumb = tmp_path / 'thumb.jpg'
	assert await asyncio.to_thread(run, 'history', 'image', job, '--thumbnail', '32', '-o', str(thumb)) == 0
	capsys.readouterr()
	assert await asyncio.to_thread(run, '--json', 'history', 'usage') == 0
	usage = json.loads(capsys.readouterr().out)
	assert await asyncio.to_thread(run, 'styles', 'update', 'Watercolor', '--negative', 'blurry') == 0
	assert await asyncio.to_thread(run, 'history', 'update', job) == 2, 'nothing to update is a usage error'
	async with AsyncClient(address) as client:
		record = await client.get_generation(job)
		style = await client.get_style('Watercolor')
	assert (record.favourite, list(record.tags), record.note) == (True, ['best', 'fox'], 'hi')
	assert out.read_bytes().startswith(b'\x89PNG')
	assert thumb.read_bytes().startswith(b'\xff\xd8')
	assert usage['models'][0]['jobs'] == 1
	assert style.negative_prompt == 'blurry'


def _public(cls: type) -> set[str]:
	return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith('_')}


def test_sync_and_async_clients_have_the_same_surface() -> None:
	assert _public(Client) == _public(AsyncClient)
	for name in _public(Client) - {'close', 'with_timeout'}:
		sync_kind = inspect.isgeneratorfunction(getattr(Client, name))
		async_kind = inspect.isasyncgenfunction(getattr(AsyncClient, name))
		assert sync_kind == async_kind, f'{name}: a stream in one client must be a stream in the other'
