"""The Node.js example (@grpc/grpc-js + @grpc/proto-loader on protos/) against the real daemon."""

import asyncio
import shutil
from pathlib import Path

import pytest

from diffusiond.server.app import Daemon
from tests.conftest import TINY_MODEL

EXAMPLE = Path(__file__).resolve().parents[1] / 'examples' / 'node'


async def test_node_example_lists_models_streams_progress_and_saves_the_image(daemon: Daemon, tmp_path: Path) -> None:
	node = shutil.which('node')
	if node is None or not (EXAMPLE / 'node_modules' / '@grpc' / 'grpc-js').is_dir():
		pytest.fail('Node.js and the example dependencies are needed: `make install` runs npm ci in examples/node')
	out = tmp_path / 'fox.png'
	address = f'127.0.0.1:{daemon.port}'
	command = [node, str(EXAMPLE / 'generate.js'), '--address', address, '--out', str(out), '--steps', '3']
	process = await asyncio.create_subprocess_exec(
		*command, '--seed', '7', 'a', 'red', 'fox', stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
	)
	stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
	assert process.returncode == 0, stderr.decode()
	lines = stdout.decode().splitlines()
	assert f'model: {TINY_MODEL} (MODEL_BASE_UNSPECIFIED, loaded)' in lines  # the tiny model has no known base
	assert 'started: model tiny-sd, seeds 7' in lines
	step, total = (
		[line for line in lines if line.startswith('progress:')][-1].removeprefix('progress: step ').split('/')
	)
	assert step == total
	assert lines[-1].startswith('completed: JOB_STATE_SUCCEEDED')
	assert out.read_bytes().startswith(b'\x89PNG\r\n\x1a\n')


async def test_node_example_reports_a_grpc_error(daemon: Daemon, tmp_path: Path) -> None:
	node = shutil.which('node')
	if node is None or not (EXAMPLE / 'node_modules').is_dir():
		pytest.fail('Node.js and the example dependencies are needed: `make install` runs npm ci in examples/node')
	command = [node, str(EXAMPLE / 'generate.js'), '--address', f'127.0.0.1:{daemon.port}', '--steps', '9999', 'x']
	process = await asyncio.create_subprocess_exec(
		*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path
	)
	_, stderr = await asyncio.wait_for(process.communicate(), 60)
	assert process.returncode == 1
	assert 'INVALID_ARGUMENT' in stderr.decode()
	assert 'steps' in stderr.decode()
