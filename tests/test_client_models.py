"""The clients' model calls and `diffusionctl models ...` against a daemon and a local file server."""

import asyncio
import json
import os
from pathlib import Path

import pytest

from diffusiond.client import AsyncClient
from diffusiond.client.cli import main as ctl
from diffusiond.v1 import model_service_pb2 as model_pb
from tests.checkpoints import fake_checkpoint
from tests.conftest import FAKE_MODEL, StartDaemon
from tests.http_files import FileServer, Route


async def test_async_client_model_calls(start_fake: StartDaemon, tmp_path: Path) -> None:
	daemon = await start_fake(overrides={'downloads': {'min_bytes': 1024}})
	fake_checkpoint(daemon.settings.storage.models_dir / 'xl.safetensors', 'sdxl')
	body = fake_checkpoint(tmp_path / 'src.safetensors', 'sd1', payload=os.urandom(50_000)).read_bytes()
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		with FileServer() as server:
			url = server.url('/fetched.safetensors', Route(body=body))
			events = [event async for event in client.download_model(url, file_name='sub/fetched.safetensors')]
		assert events[-1].completed.name == 'sub/fetched'
		assert (await client.refresh_models()).unchanged == 3  # the download's rescan found xl too
		assert [m.name for m in await client.list_models(base='sdxl')] == ['xl']
		assert [m.name for m in await client.list_models(order='last-used')][-1] == 'xl'
		assert [m.name for m in await client.list_models(loaded_only=True)] == [FAKE_MODEL]
		assert (await client.get_model('xl')).native_size == 1024
		assert (await client.load_model(FAKE_MODEL)).cold is False
		assert await client.unload_model(FAKE_MODEL) is True
		assert (await client.delete_model('xl')).name == 'xl'
		assert (await client.refresh_models(restore_unregistered=True)).restored == 1
		with pytest.raises(ValueError, match='base must be one of'):
			await client.list_models(base='sd3')


async def test_cli_models_commands(start_fake: StartDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	daemon = await start_fake(overrides={'downloads': {'min_bytes': 1024}})
	base = ['--address', f'127.0.0.1:{daemon.port}']
	body = fake_checkpoint(tmp_path / 'src.safetensors', 'sd2', payload=os.urandom(300_000)).read_bytes()
	with FileServer() as server:
		url = server.url('/sd2-model.safetensors', Route(body=body, chunk_delay_s=0.001))
		assert await asyncio.to_thread(ctl, [*base, 'models', 'download', url]) == 0
	captured = capsys.readouterr()
	assert 'sd2-model' in captured.out
	assert 'MiB' in captured.err, 'a progress line on stderr'
	assert await asyncio.to_thread(ctl, [*base, 'models', 'list', '--base', 'sd2']) == 0
	listed = capsys.readouterr().out
	assert 'sd2-model' in listed
	assert FAKE_MODEL not in listed
	assert await asyncio.to_thread(ctl, [*base, '--json', 'models', 'list', '--loaded']) == 0
	assert json.loads(capsys.readouterr().out.splitlines()[0])['name'] == FAKE_MODEL
	assert await asyncio.to_thread(ctl, [*base, 'models', 'show', 'sd2-model']) == 0
	assert json.loads(capsys.readouterr().out)['base'] == model_pb.ModelBase.Name(model_pb.MODEL_BASE_SD2)
	update = [*base, '--json', 'models', 'update', 'sd2-model', '--display-name', 'SD 2', '--tags', 'a, b']
	assert await asyncio.to_thread(ctl, [*update, '--steps', '12', '--sampler', 'Euler a']) == 0
	assert await asyncio.to_thread(ctl, [*base, '--json', 'models', 'update', 'sd2-model', '--cfg', '4.5']) == 0
	updated = json.loads(capsys.readouterr().out.splitlines()[-1])
	assert (updated['displayName'], updated['tags']) == ('SD 2', ['a', 'b'])
	assert updated['defaults'] == {'sampler': 'SAMPLER_EULER_A', 'steps': 12, 'guidanceScale': 4.5}
	assert await asyncio.to_thread(ctl, [*base, 'models', 'update', 'sd2-model']) == 2
	assert 'nothing to update' in capsys.readouterr().err
	assert await asyncio.to_thread(ctl, [*base, 'models', 'load', FAKE_MODEL]) == 0
	assert 'from cache' in capsys.readouterr().out
	assert await asyncio.to_thread(ctl, [*base, 'models', 'unload', FAKE_MODEL]) == 0
	assert 'unloaded' in capsys.readouterr().err
	assert await asyncio.to_thread(ctl, [*base, 'models', 'delete', 'sd2-model', '--files']) == 0
	assert not (daemon.settings.storage.models_dir / 'sd2-model.safetensors').exists()
	assert await asyncio.to_thread(ctl, [*base, 'models', 'refresh']) == 0
	assert 'removed 0' in capsys.readouterr().out
	assert await asyncio.to_thread(ctl, [*base, 'models', 'show', 'gone']) == 3
	assert 'NOT_FOUND' in capsys.readouterr().err
	assert await asyncio.to_thread(ctl, [*base, 'info']) == 0
	assert 'model cache' in capsys.readouterr().out
