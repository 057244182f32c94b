"""The clients' history calls and `diffusionctl history ...`."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from diffusiond.client import AsyncClient
from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from tests.conftest import StartDaemon
from tests.helpers import pixels


async def test_async_client_history_calls(daemon: Daemon) -> None:
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		images = await client.generate_images('client history owl', steps=1, seed=8)
		found = await client.list_generations(query='client history owl')
		assert len(found) == 1
		generation = await client.get_generation(found[0].id)
		assert list(generation.seeds) == [8]
		assert await client.get_image(generation.id) == images[0].data
		again = [event async for event in client.regenerate(generation.id) if event.HasField('image')]
		assert np.array_equal(pixels(again[0].image.data), pixels(images[0].data))
		await client.delete_generation(generation.id)
		assert [g.id for g in await client.list_generations(query='client history owl')] != [generation.id]


async def test_cli_history(daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	base = ['--address', f'127.0.0.1:{daemon.port}']
	out = tmp_path / 'lynx.png'
	generate = [*base, 'generate', 'cli history lynx', '-o', str(out), '--steps', '1', '--seed', '3']
	assert await asyncio.to_thread(ctl, generate) == 0
	capsys.readouterr()
	assert await asyncio.to_thread(ctl, [*base, '--json', 'history', 'list', '-q', 'cli history lynx']) == 0
	generation_id = json.loads(capsys.readouterr().out)['id']
	assert await asyncio.to_thread(ctl, [*base, 'history', 'show', generation_id]) == 0
	assert json.loads(capsys.readouterr().out)['prompt'] == 'cli history lynx'
	again = tmp_path / 'again.png'
	assert await asyncio.to_thread(ctl, [*base, 'history', 'regenerate', generation_id, '-o', str(again)]) == 0
	first, second = await asyncio.to_thread(lambda: (out.read_bytes(), again.read_bytes()))
	assert np.array_equal(pixels(first), pixels(second))
	assert await asyncio.to_thread(ctl, [*base, 'history', 'rm', generation_id]) == 0
	assert await asyncio.to_thread(ctl, [*base, 'history', 'show', generation_id]) == 3


async def test_archives_through_the_clients_and_the_cli(
	start_fake: StartDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
	daemon = await start_fake()
	base = ['--address', f'127.0.0.1:{daemon.port}']
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		await client.generate_images('archived crane', steps=1)
		data = b''.join([chunk async for chunk in client.export_archive(include_images=True)])

		async def chunks() -> AsyncIterator[bytes]:
			yield data

		assert (await client.import_archive(chunks())).generations_skipped == 1
	archive = tmp_path / 'backup.zip'
	assert await asyncio.to_thread(ctl, [*base, 'history', 'export', str(archive), '--images']) == 0
	assert await asyncio.to_thread(ctl, [*base, 'history', 'import', str(archive)]) == 0
	assert json.loads(capsys.readouterr().out.splitlines()[-1])['generationsSkipped'] == 1
