"""The bundled Python client (sync and asyncio) and the diffusionctl CLI against the real daemon."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from diffusiond.client import (
	AsyncClient,
	Client,
	build_generate_request,
	parse_sampler,
	parse_schedule,
	sampler_names,
	schedule_names,
)
from diffusiond.client.cli import main as ctl
from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.helpers import pixels


def address(daemon: Daemon) -> str:
	return f'127.0.0.1:{daemon.port}'


async def test_async_client_generate_and_images(daemon: Daemon) -> None:
	async with AsyncClient(address(daemon)) as client:
		kinds = [e.WhichOneof('event') async for e in client.generate('a fox', steps=2, seed=9, sampler='Euler a')]
		assert kinds[0] == 'queued'
		assert kinds[-1] == 'completed'
		images = await client.generate_images('a fox', steps=2, seed=9, num_images=2, output_format='jpeg', quality=70)
		assert [(i.seed, i.mime_type, i.suffix) for i in images] == [
			(9, 'image/jpeg', '.jpg'),
			(10, 'image/jpeg', '.jpg'),
		]
		info = await client.system_info()
		assert info.device.name == 'cpu'
		assert await client.list_jobs() == []


async def test_sync_client(daemon: Daemon, tmp_path: Path) -> None:
	def run() -> tuple[list[int], int, Path, tuple[int, int]]:
		with Client(address(daemon), timeout=60) as client:
			images = client.generate_images('a fox', steps=2, seed=3, width=64, height=96)
			path = images[0].save(tmp_path / 'fox.png')
			return [i.seed for i in images], len(client.list_jobs()), path, images[0].to_pil().size

	seeds, jobs, path, size = await asyncio.to_thread(run)
	assert size == (64, 96)
	assert seeds == [3]
	assert jobs == 0
	assert pixels(path.read_bytes()).shape == (96, 64, 3)


async def test_leaving_the_async_stream_early_cancels_the_job(daemon: Daemon) -> None:
	async with AsyncClient(address(daemon)) as client:
		stream = client.generate('a fox', steps=150, seed=1)
		async for event in stream:
			if event.HasField('progress'):
				break
		await stream.aclose()
		for _ in range(200):
			if not await client.list_jobs():
				return
			await asyncio.sleep(0.02)
	raise AssertionError('job still listed after the client left the stream')


def test_request_building() -> None:
	request = build_generate_request(
		'p', steps=3, seed=0, guidance_scale=0.0, sampler='DPM++ 2M Karras', output_format='webp'
	)
	assert request.HasField('seed')
	assert request.seed == 0
	assert request.HasField('guidance_scale')
	assert not request.HasField('width')
	assert request.sampler == gen_pb.SAMPLER_DPMPP_2M_KARRAS
	assert request.output_format == gen_pb.IMAGE_FORMAT_WEBP
	assert parse_sampler('euler_a') == parse_sampler('Euler a') == gen_pb.SAMPLER_EULER_A
	assert 'unipc' in sampler_names()
	with pytest.raises(ValueError, match='unknown sampler'):
		parse_sampler('nope')
	assert parse_schedule('SGM Uniform') == parse_schedule('sgm_uniform') == gen_pb.SCHEDULE_SGM_UNIFORM
	assert parse_schedule('Automatic') == gen_pb.SCHEDULE_UNSPECIFIED
	assert 'beta' in schedule_names()
	assert build_generate_request('p', sampler='LCM', schedule='Karras').schedule == gen_pb.SCHEDULE_KARRAS
	with pytest.raises(ValueError, match='unknown schedule'):
		parse_schedule('align your steps')
	with pytest.raises(ValueError, match='unknown image format'):
		build_generate_request('p', output_format='gif')
	assert not build_generate_request('p', seed=-1).HasField('seed'), "A1111's -1: random"
	assert build_generate_request('p', seed=0).seed == 0


async def test_cli_generate_info_and_jobs(daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	out = tmp_path / 'fox.png'
	args = ['--address', address(daemon), 'generate', 'a red fox', '-o', str(out), '--steps', '3', '--seed', '7']
	assert await asyncio.to_thread(ctl, [*args, '-n', '2', '--size', '64x64']) == 0
	assert (tmp_path / 'fox-0.png').exists()
	assert (tmp_path / 'fox-1.png').exists()
	captured = capsys.readouterr()
	assert 'seed 7' in captured.out
	assert 'seed 8' in captured.out
	assert 'step 3/' in captured.err
	assert await asyncio.to_thread(ctl, [*args, '--format', 'jpeg']) == 2, 'a .png name is no JPEG'
	assert 'make them agree' in capsys.readouterr().err
	jpeg = ['--address', address(daemon), 'generate', 'a red fox', '-o', str(tmp_path / 'fox.jpg'), '--steps', '3']
	assert await asyncio.to_thread(ctl, [*jpeg, '--format', 'jpeg']) == 0
	assert (tmp_path / 'fox.jpg').read_bytes().startswith(b'\xff\xd8')
	assert not out.exists()
	capsys.readouterr()
	assert await asyncio.to_thread(ctl, ['--address', address(daemon), '--json', 'info']) == 0
	assert json.loads(capsys.readouterr().out)['device']['name'] == 'cpu'
	assert await asyncio.to_thread(ctl, ['--address', address(daemon), 'jobs', 'list']) == 0
	random = ['--address', address(daemon), 'generate', 'x', '-o', str(tmp_path / 'r.png'), '--steps', '1']
	assert await asyncio.to_thread(ctl, [*random, '--seed', '-1', '--size', '64x64']) == 0
	drawn = capsys.readouterr().out
	assert 'seed ' in drawn, 'the seed drawn is reported'
	assert 'seed -1' not in drawn


@pytest.mark.parametrize(
	('argv', 'code', 'message'),
	[
		(['generate', 'x', '--size', '513x64'], 2, 'INVALID_ARGUMENT'),
		(['generate', 'x', '--model', 'missing'], 3, 'NOT_FOUND'),
		(['generate', 'x', '--sampler', 'nope'], 2, 'unknown sampler'),
		(['jobs', 'cancel', '00000000-0000-0000-0000-000000000000'], 3, 'NOT_FOUND'),
	],
)
async def test_cli_exit_codes(
	daemon: Daemon, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
	assert await asyncio.to_thread(ctl, ['--address', address(daemon), *argv]) == code
	assert message in capsys.readouterr().err


def test_cli_unreachable_daemon(capsys: pytest.CaptureFixture[str]) -> None:
	assert ctl(['--address', '127.0.0.1:1', 'info']) == 4  # after the retries of a read
	err = capsys.readouterr().err
	assert 'UNAVAILABLE' in err
	assert 'is diffusiond running at 127.0.0.1:1?' in err
	assert ctl(['--address', '127.0.0.1:1', '--timeout', '0.5', 'info']) == 4  # the deadline cuts the retries


def test_client_imports_without_torch() -> None:
	code = (
		'import sys; sys.modules["torch"] = None; sys.modules["diffusers"] = None\n'
		'import diffusiond.client, diffusiond.client.cli\n'
		'print("ok")'
	)
	result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False)
	assert result.stdout.strip() == 'ok', result.stderr
