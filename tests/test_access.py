"""Access: the API token (health exempt), TLS and mutual TLS, the Unix socket, loopback by default."""

import asyncio
import os
import socket
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from diffusiond.client import AsyncClient, Unavailable
from diffusiond.client.cli import main as ctl
from diffusiond.client.connection import Connection, Tls
from diffusiond.server.app import Daemon
from diffusiond.server.listen import StartupError
from diffusiond.server.settings import Settings
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import StartDaemon, make_settings
from tests.fakes import FakeEngine
from tests.helpers import error_details, rpc_error
from tests.pki import pki

__all__ = ['pki']  # the fixture, imported for pytest

TOKEN = 's3cret-token'
BEARER = (('authorization', f'Bearer {TOKEN}'),)


async def _reflection_list(chan: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> list[str]:
	stub = reflection_pb2_grpc.ServerReflectionStub(chan)
	call = stub.ServerReflectionInfo(
		iter([reflection_pb2.ServerReflectionRequest(list_services='')]), metadata=metadata
	)
	async for answer in call:
		return [service.name for service in answer.list_services_response.service]
	return []


def test_default_bind_is_loopback_only() -> None:
	settings = Settings()
	assert settings.server.host == '127.0.0.1'
	assert settings.security.api_token() is None


async def test_token_is_required_except_for_health(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides={'security': {'token': TOKEN}})
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		check = await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest())
		assert check.status == health_pb2.HealthCheckResponse.SERVING
		models = model_grpc.ModelServiceStub(chan)
		missing = await rpc_error(models.ListModels(model_pb.ListModelsRequest()))
		wrong = await rpc_error(
			models.ListModels(model_pb.ListModelsRequest(), metadata=(('authorization', 'Bearer nope'),))
		)
		not_bearer = await rpc_error(
			models.ListModels(model_pb.ListModelsRequest(), metadata=(('authorization', TOKEN),))
		)
		listed = await models.ListModels(model_pb.ListModelsRequest(), metadata=BEARER)
		with pytest.raises(grpc.aio.AioRpcError) as reflected:
			await _reflection_list(chan)
		assert 'diffusiond.v1.ModelService' in await _reflection_list(chan, BEARER)
	for error, reason in ((missing, 'TOKEN_MISSING'), (wrong, 'TOKEN_INVALID'), (not_bearer, 'TOKEN_INVALID')):
		assert error.code() == grpc.StatusCode.UNAUTHENTICATED
		assert error_details(error)[0].reason == reason
	assert 'authorization: Bearer' in str(missing.details())
	assert [model.name for model in listed.models] == ['fake-model']
	assert reflected.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_client_and_cli_send_the_token(
	start_fake: StartDaemon, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
	daemon = await start_fake(overrides={'security': {'token': TOKEN}})
	address = f'localhost:{daemon.port}'
	async with AsyncClient(address, token=TOKEN) as client:
		assert [model.name for model in await client.list_models()] == ['fake-model']
		images = await client.generate_images('x', steps=2, width=64, height=64)
		assert len(images) == 1
	assert await asyncio.to_thread(ctl, ['--address', address, '--token', 'wrong', 'models', 'list']) == 5
	assert 'TOKEN' not in capsys.readouterr().out
	monkeypatch.setenv('DIFFUSIOND_TOKEN', TOKEN)
	assert await asyncio.to_thread(ctl, ['--address', address, 'models', 'list']) == 0
	assert 'fake-model' in capsys.readouterr().out


def test_token_is_never_sent_in_clear_text_to_a_remote_address() -> None:
	with pytest.raises(ValueError, match='clear text'):
		Connection.resolve('diffusion.example.com:50051', token=TOKEN).credentials()
	assert Connection.resolve('unix:/run/d.sock', token=TOKEN).credentials() is not None
	assert Connection.resolve('192.0.2.7:50051').credentials() is None  # no token: a plain channel


async def test_token_file_and_bad_settings(tmp_path: Path) -> None:
	token_file = tmp_path / 'token'
	token_file.write_text(f'{TOKEN}\n')
	assert make_settings(tmp_path, {'security': {'token_file': str(token_file)}}).security.api_token() == TOKEN
	with pytest.raises(ValueError, match='tls_cert and tls_key go together'):
		make_settings(tmp_path, {'security': {'tls_cert': str(token_file)}})
	missing = make_settings(tmp_path, {'security': {'token_file': str(tmp_path / 'absent')}})
	with pytest.raises(StartupError, match='cannot read the API token file'):
		Daemon(missing, FakeEngine())


async def test_tls(start_fake: StartDaemon, pki: dict[str, Path]) -> None:
	daemon = await start_fake(overrides={'security': {'tls_cert': str(pki['cert']), 'tls_key': str(pki['key'])}})
	assert daemon.endpoints.tls
	async with AsyncClient(f'localhost:{daemon.port}', tls=Tls(ca=pki['ca']), timeout=10) as client:
		assert [model.name for model in await client.list_models()] == ['fake-model']
	async with AsyncClient(f'localhost:{daemon.port}', timeout=2) as plain:
		with pytest.raises(Unavailable):
			await plain.generate_images('x')  # never retried: fails at once


async def test_mutual_tls_needs_a_client_certificate(start_fake: StartDaemon, pki: dict[str, Path]) -> None:
	security: dict[str, object] = {
		'tls_cert': str(pki['cert']),
		'tls_key': str(pki['key']),
		'tls_client_ca': str(pki['ca']),
	}
	daemon = await start_fake(overrides={'security': security})
	address = f'127.0.0.1:{daemon.port}'
	with_cert = Tls(ca=pki['ca'], cert=pki['client_cert'], key=pki['client_key'])
	async with AsyncClient(address, tls=with_cert, token=None, timeout=10) as client:
		assert len(await client.list_models()) == 1
	async with AsyncClient(address, tls=Tls(ca=pki['ca']), timeout=2) as anonymous:
		with pytest.raises(Unavailable):
			await anonymous.generate_images('x')


async def test_unix_socket(start_fake: StartDaemon, tmp_path: Path) -> None:
	path = tmp_path / 'run' / 'd.sock'
	daemon = await start_fake(overrides={'server': {'socket': str(path), 'tcp': False}})
	assert daemon.port == 0
	assert (path.parent.stat().st_mode & 0o777) == 0o700
	async with AsyncClient(f'unix:{path}') as client:
		assert [model.name for model in await client.list_models()] == ['fake-model']
	with pytest.raises(StartupError, match='already listening'):
		Daemon(make_settings(tmp_path / 'other', {'server': {'socket': str(path), 'tcp': False}}), FakeEngine())
	await daemon.shutdown(0.0)
	assert not path.exists()


async def test_stale_socket_is_replaced_and_open_folders_refused(start_fake: StartDaemon, tmp_path: Path) -> None:
	folder = tmp_path / 'run'
	folder.mkdir(mode=0o700)
	stale = folder / 'd.sock'
	left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	left.bind(str(stale))  # bound, never listening, never removed: what a killed daemon leaves
	left.close()
	daemon = await start_fake(overrides={'server': {'socket': str(stale)}})
	async with AsyncClient(f'unix:{stale}') as client:
		assert len(await client.list_models()) == 1
	assert daemon.port > 0  # TCP stays on unless turned off
	shared = tmp_path / 'shared'
	shared.mkdir(mode=0o755)
	shared.chmod(0o755)
	with pytest.raises(StartupError, match='open to other users'):
		Daemon(make_settings(tmp_path / 'other', {'server': {'socket': str(shared / 'd.sock')}}), FakeEngine())
	(folder / 'file').write_text('x')
	with pytest.raises(StartupError, match='is not a socket'):
		Daemon(make_settings(tmp_path / 'other', {'server': {'socket': str(folder / 'file')}}), FakeEngine())


async def test_a_taken_tcp_port_fails_clearly(start_fake: StartDaemon, tmp_path: Path) -> None:
	daemon = await start_fake()
	with pytest.raises(StartupError, match='cannot listen on 127'):
		Daemon(make_settings(tmp_path / 'other', {'server': {'port': daemon.port}}), FakeEngine())


async def test_an_unknown_method_is_refused_like_a_known_one(start_fake: StartDaemon) -> None:
	"""Without the token nothing tells real methods from made-up ones; with it, an unknown one is UNIMPLEMENTED."""
	daemon = await start_fake(overrides={'security': {'token': TOKEN}})
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		made_up = chan.unary_unary('/diffusiond.v1.ModelService/NoSuchMethod', None, None)
		streamed = chan.unary_stream('/no.such.Service/Method', None, None)
		without = await rpc_error(made_up(b''))
		streamed_without = await rpc_error(streamed(b'').read())
		wrong = await rpc_error(made_up(b'', metadata=(('authorization', 'Bearer nope'),)))
		with_token = await rpc_error(made_up(b'', metadata=BEARER))
	assert (without.code(), error_details(without)[0].reason) == (grpc.StatusCode.UNAUTHENTICATED, 'TOKEN_MISSING')
	assert streamed_without.code() == grpc.StatusCode.UNAUTHENTICATED
	assert (wrong.code(), error_details(wrong)[0].reason) == (grpc.StatusCode.UNAUTHENTICATED, 'TOKEN_INVALID')
	assert with_token.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize('how', ['empty token file', 'token of spaces'])
async def test_an_empty_token_setting_refuses_to_start(tmp_path: Path, how: str) -> None:
	"""A token setting that is present but empty never means "no authentication" (a real daemon process)."""
	env = {**os.environ, 'DIFFUSIOND_MODELS__DEMO_MODEL': 'false', 'TRANSFORMERS_VERBOSITY': 'error'}
	command = [sys.executable, '-m', 'diffusiond.server', 'serve', '--port', '0', '--data-dir', str(tmp_path)]
	if how == 'empty token file':
		(tmp_path / 'token').write_text('\n')
		command += ['--token-file', str(tmp_path / 'token')]
		expected = f'the API token file {tmp_path / "token"} is set but empty'
	else:
		env['DIFFUSIOND_SECURITY__TOKEN'] = '   '
		expected = 'DIFFUSIOND_SECURITY__TOKEN is set but empty'
	process = await asyncio.create_subprocess_exec(
		*command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
	)
	_, err = await asyncio.wait_for(process.communicate(), 60)
	assert process.returncode == 1
	assert expected in err.decode()
	assert 'Traceback' not in err.decode()


async def test_the_daemon_says_one_clear_line_when_its_port_is_taken(tmp_path: Path) -> None:
	"""A real process: the friendly message only, no gRPC C-core log line, no library warnings, no traceback."""
	holder = socket.socket()
	holder.bind(('127.0.0.1', 0))
	holder.listen()
	port = holder.getsockname()[1]
	env = {**os.environ, 'DIFFUSIOND_MODELS__DEMO_MODEL': 'false'}
	command = [sys.executable, '-m', 'diffusiond.server', 'serve', '--port', str(port), '--data-dir', str(tmp_path)]
	try:
		process = await asyncio.create_subprocess_exec(
			*command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
		)
		_, err = await asyncio.wait_for(process.communicate(), 60)
	finally:
		holder.close()
	text = err.decode()
	assert process.returncode == 1
	assert f'cannot listen on 127.0.0.1:{port}' in text
	assert 'add_port' not in text
	assert '[transformers]' not in text, 'no library chatter at start'
	assert 'Traceback' not in text
