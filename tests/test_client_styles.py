"""The clients' style calls, `diffusionctl styles ...` and `generate --style`."""

import asyncio
from pathlib import Path

import pytest

from diffusiond.client import AsyncClient, build_generate_request
from diffusiond.client.cli import main as ctl
from tests.conftest import StartDaemon
from tests.fakes import FakeEngine


async def test_async_client_style_calls(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		created = await client.create_style('Ink', 'ink drawing of {prompt}', 'color', 'lines', ['art'])
		assert (await client.get_style('ink')).id == created.id
		assert [style.name for style in await client.list_styles('ink drawing')] == ['Ink']
		exported = await client.export_styles()
		assert b'Ink,ink drawing of {prompt},color' in exported
		result = await client.import_styles(b'name,prompt,negative_prompt\nNew,"new {prompt}",\n')
		assert list(result.created) == ['New']
		assert (await client.delete_style('New')).name == 'New'


async def test_cli_styles_and_generate_with_a_style(
	start_fake: StartDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
	backend = FakeEngine()
	daemon = await start_fake(backend)
	base = ['--address', f'127.0.0.1:{daemon.port}']
	assert (
		await asyncio.to_thread(
			ctl, [*base, 'styles', 'add', 'Ink', '--prompt', 'ink drawing of {prompt}', '--tags', 'a,b']
		)
		== 0
	)
	assert 'created Ink' in capsys.readouterr().out
	assert await asyncio.to_thread(ctl, [*base, 'styles', 'list', '--query', 'ink']) == 0
	assert 'Ink' in capsys.readouterr().out
	out = tmp_path / 'styles.csv'
	assert await asyncio.to_thread(ctl, [*base, 'styles', 'export', '-o', str(out)]) == 0
	assert out.read_bytes().startswith('\ufeffname,prompt,negative_prompt'.encode())
	assert await asyncio.to_thread(ctl, [*base, 'styles', 'rm', 'Ink']) == 0
	assert await asyncio.to_thread(ctl, [*base, 'styles', 'import', str(out)]) == 0
	assert 'created 1' in capsys.readouterr().out
	assert await asyncio.to_thread(ctl, [*base, 'styles', 'show', 'nope']) == 3
	image = str(tmp_path / 'x.png')
	assert (
		await asyncio.to_thread(ctl, [*base, 'generate', 'a fox', '-o', image, '--steps', '1', '--style', 'Ink']) == 0
	)
	assert backend.runs[-1].prompt == 'ink drawing of a fox'
	assert build_generate_request('p', styles=['a', 'b']).styles == ['a', 'b']
