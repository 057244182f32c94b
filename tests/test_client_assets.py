"""The clients' embedding and VAE calls, `diffusionctl embeddings|vaes` and `generate --vae`."""

import asyncio
import json

import pytest

from diffusiond.client import AsyncClient, Client, build_generate_request
from diffusiond.client.cli import main as ctl
from tests.asset_files import random_vectors, write_embedding, write_sdxl_embedding
from tests.conftest import StartDaemon


def test_the_vae_option_builds_the_request() -> None:
	assert build_generate_request('p', vae='bright').vae == 'bright'
	assert build_generate_request('p').vae == ''


async def test_clients_and_cli_list_embeddings_and_vaes(
	start_fake: StartDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
	daemon = await start_fake()
	folder = daemon.settings.storage.embeddings_dir
	write_embedding(folder / 'easy.safetensors', random_vectors(2, 1, 768))
	write_sdxl_embedding(folder / 'xl.safetensors', 3)
	(daemon.settings.storage.vaes_dir / 'broken.safetensors').write_bytes(b'not a safetensors file')
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		assert [item.name for item in await client.list_embeddings()] == []  # not scanned yet: found by a refresh
		await daemon.assets.embeddings.refresh()
		await daemon.assets.vaes.refresh()
		assert [item.name for item in await client.list_embeddings(base='sdxl')] == ['xl']
		assert [item.vectors for item in await client.list_embeddings()] == [2, 3]
		assert [item.status for item in await client.list_vaes()] == [3]  # MODEL_STATUS_INVALID
	address = f'127.0.0.1:{daemon.port}'

	def listed() -> list[str]:
		with Client(address) as sync:
			return [item.name for item in sync.list_vaes()]

	assert await asyncio.to_thread(listed) == ['broken']
	assert await asyncio.to_thread(ctl, ['--address', address, 'embeddings']) == 0
	lines = capsys.readouterr().out.splitlines()
	assert lines[0].startswith('easy  sd1  2 vectors')
	assert lines[1].startswith('xl  sdxl  3 vectors')
	assert await asyncio.to_thread(ctl, ['--address', address, '--json', 'vaes']) == 0
	assert json.loads(capsys.readouterr().out)[0]['name'] == 'broken'
