"""One daemon per data folder: a second one, started later or at the same moment, refuses with the holder's pid."""

import asyncio
import os
import sys
from pathlib import Path

import grpc
import pytest

from diffusiond.server.app import Daemon
from diffusiond.server.listen import StartupError
from diffusiond.server.lock import LOCK_NAME
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import StartDaemon, make_settings
from tests.fakes import FakeEngine
from tests.processes import spawn_daemon


def _serve_command(data_dir: Path, port_file: Path) -> list[str]:
	return [
		sys.executable,
		'-m',
		'diffusiond.server',
		'serve',
		'--port',
		'0',
		'--port-file',
		str(port_file),
		'--data-dir',
		str(data_dir),
		'--log-level',
		'WARNING',
	]


async def _start(data_dir: Path, port_file: Path) -> asyncio.subprocess.Process:
	env = {**os.environ, 'DIFFUSIOND_MODELS__DEMO_MODEL': 'false', 'TRANSFORMERS_VERBOSITY': 'error'}
	return await asyncio.create_subprocess_exec(
		*_serve_command(data_dir, port_file),
		env=env,
		stdout=asyncio.subprocess.DEVNULL,
		stderr=asyncio.subprocess.PIPE,
	)


async def test_a_second_daemon_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
	first, address = await spawn_daemon(tmp_path)
	try:
		second = await _start(tmp_path, tmp_path / 'second.port')
		_, err = await asyncio.wait_for(second.communicate(), 60)
		async with grpc.aio.insecure_channel(address) as chan:
			listed = await model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest())
	finally:
		first.terminate()
		await asyncio.wait_for(first.wait(), 30)
	assert second.returncode == 1
	assert f'in use by another diffusiond (pid {first.pid})' in err.decode()
	assert 'Traceback' not in err.decode()
	assert not (tmp_path / 'second.port').exists(), 'the second daemon never listened'
	assert listed.models == [], 'the first daemon serves on'
	assert (tmp_path / LOCK_NAME).exists()


async def test_two_daemons_started_together_on_an_empty_dir_give_one_server(tmp_path: Path) -> None:
	data = tmp_path / 'data'
	ports = [tmp_path / 'a.port', tmp_path / 'b.port']
	processes = [await _start(data, port) for port in ports]
	try:
		for _ in range(600):
			if any(process.returncode is not None for process in processes):
				break
			await asyncio.sleep(0.1)
		refused = next(process for process in processes if process.returncode is not None)
		_, err = await refused.communicate()
		serving = next(process for process in processes if process is not refused)
		port_file = ports[processes.index(serving)]
		for _ in range(600):
			if port_file.exists() and port_file.read_text().strip():
				break
			await asyncio.sleep(0.1)
		async with grpc.aio.insecure_channel(f'127.0.0.1:{port_file.read_text().strip()}') as chan:
			listed = await model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest())
	finally:
		for process in processes:
			if process.returncode is None:
				process.terminate()
				await asyncio.wait_for(process.wait(), 30)
	assert refused.returncode == 1
	assert 'in use by another diffusiond' in err.decode()
	assert 'Traceback' not in err.decode()
	assert serving.returncode == 0
	assert listed.models == []


async def test_the_lock_is_released_on_shutdown(start_fake: StartDaemon, tmp_path: Path) -> None:
	daemon = await start_fake()
	with pytest.raises(StartupError, match=f'pid {os.getpid()}'):
		Daemon(make_settings(tmp_path), FakeEngine())
	await daemon.shutdown(0.0)
	again = await start_fake()  # the same folder, free again
	assert again.ready.is_set()
