"""The clients' LoRA calls, `diffusionctl loras ...` and `generate --lora`."""

import asyncio
import json
from pathlib import Path

import pytest

from diffusiond.client import AsyncClient, build_generate_request
from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from tests.checkpoints import fake_lora
from tests.conftest import StartDaemon
from tests.lora_files import write_tiny_lora


def test_lora_options_build_the_request() -> None:
	request = build_generate_request('p', loras=['detail:0.8', 'style', 'odd:name:1.5'], add_trigger_words=True)
	assert [(ref.lora, ref.HasField('weight')) for ref in request.loras] == [
		('detail', True),
		('style', False),
		('odd:name', True),
	]
	assert request.loras[0].weight == pytest.approx(0.8)
	assert request.add_trigger_words
	with pytest.raises(ValueError, match='NAME:WEIGHT'):
		build_generate_request('p', loras=['detail:strong'])


async def test_async_client_lora_calls(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	fake_lora(daemon.settings.storage.loras_dir / 'one.safetensors', 'sd1', {'modelspec.trigger_phrase': 'uno'})
	fake_lora(daemon.settings.storage.loras_dir / 'two.safetensors', 'sdxl')
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		assert (await client.refresh_loras()).added == 2
		assert [lora.name for lora in await client.list_loras(base='sdxl')] == ['two']
		assert list((await client.get_lora('one')).trigger_words) == ['uno']
		updated = await client.update_lora('one', trigger_words=['eins'], default_weight=0.6, tags=['x'])
		assert (list(updated.trigger_words), list(updated.tags)) == (['eins'], ['x'])
		results = await client.batch_loras(['one', 'zzz'], 'disable')
		assert [result.code for result in results] == [0, 5]
		assert [lora.name for lora in await client.list_loras(enabled=False)] == ['one']
		with pytest.raises(ValueError, match='nothing to update'):
			await client.update_lora('one')


async def test_cli_loras_commands(start_fake: StartDaemon, capsys: pytest.CaptureFixture[str]) -> None:
	daemon = await start_fake()
	fake_lora(daemon.settings.storage.loras_dir / 'ink.safetensors', 'sd1', {'modelspec.trigger_phrase': 'ink, lines'})
	base = ['--address', f'127.0.0.1:{daemon.port}']
	assert await asyncio.to_thread(ctl, [*base, 'loras', 'refresh']) == 0
	assert 'added 1' in capsys.readouterr().out
	assert await asyncio.to_thread(ctl, [*base, 'loras', 'list', '--query', 'lines']) == 0
	assert 'ink, lines' in capsys.readouterr().out
	assert (
		await asyncio.to_thread(ctl, [*base, 'loras', 'update', 'ink', '--triggers', 'sketch', '--weight', '0.7']) == 0
	)
	assert await asyncio.to_thread(ctl, [*base, 'loras', 'show', 'ink']) == 0
	shown = json.loads(capsys.readouterr().out.split('\n', 1)[1])
	assert (shown['triggerWords'], shown['defaultWeight']) == (['sketch'], pytest.approx(0.7))
	assert await asyncio.to_thread(ctl, [*base, 'loras', 'disable', 'ink', 'missing']) == 1
	captured = capsys.readouterr()
	assert 'ink: ok' in captured.out
	assert 'LORA_NOT_FOUND' in captured.out
	assert await asyncio.to_thread(ctl, [*base, '--json', 'loras', 'list', '--disabled']) == 0
	assert json.loads(capsys.readouterr().out)['name'] == 'ink'
	assert await asyncio.to_thread(ctl, [*base, 'loras', 'delete', 'ink', '--files']) == 0
	assert not (daemon.settings.storage.loras_dir / 'ink.safetensors').exists()


async def test_cli_generate_with_a_lora(daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	write_tiny_lora(daemon.settings.storage.loras_dir / 'cli-lora.safetensors')
	out = str(tmp_path / 'fox.png')
	args = [
		'--address',
		f'127.0.0.1:{daemon.port}',
		'generate',
		'a fox',
		'-o',
		out,
		'--steps',
		'2',
		'--lora',
		'cli-lora:0.7',
	]
	assert await asyncio.to_thread(ctl, args) == 0
	assert 'cli-lora:0.7' in capsys.readouterr().err
