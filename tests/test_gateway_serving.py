"""How the gateway is served: off unless a port is set (`--http-port`), TLS from the daemon's own settings, a taken
port a clear start-up error, and a client that hangs up cancels its job as a gRPC caller that goes away does."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from diffusiond.server.app import Daemon
from diffusiond.server.cli import build_parser, settings_from
from diffusiond.server.listen import StartupError
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.conftest import Overrides, StartDaemon, make_settings, stubs
from tests.fakes import FakeEngine
from tests.gateway_fixtures import http_overrides
from tests.pki import pki

__all__ = ['pki']


def test_http_is_off_unless_a_port_is_set(tmp_path: Path) -> None:
	assert settings_from(build_parser().parse_args(['serve', '--data-dir', str(tmp_path)])).http.port is None
	argv = ['serve', '--data-dir', str(tmp_path), '--http-port', '7860']
	assert settings_from(build_parser().parse_args(argv)).http.port == 7860


async def test_tls_settings_serve_https(start_fake: StartDaemon, pki: dict[str, Path]) -> None:
	security: dict[str, object] = {'tls_cert': str(pki['cert']), 'tls_key': str(pki['key'])}
	daemon = await start_fake(overrides=http_overrides({'security': security}))
	assert daemon.http is not None
	async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(pki['ca']))) as client:
		answer = await client.get(f'https://127.0.0.1:{daemon.http.port}/sdapi/v1/samplers')
	assert answer.status_code == 200
	with pytest.raises(httpx.HTTPError):
		async with httpx.AsyncClient() as plain:
			await plain.get(f'http://127.0.0.1:{daemon.http.port}/sdapi/v1/samplers')


async def test_a_taken_http_port_fails_clearly(start_fake: StartDaemon, tmp_path: Path) -> None:
	daemon = await start_fake(overrides=http_overrides())
	assert daemon.http is not None
	taken: Overrides = {'http': {'port': daemon.http.port}}
	with pytest.raises(StartupError, match='cannot listen for HTTP on 127'):
		Daemon(make_settings(tmp_path / 'other', taken), FakeEngine())


async def test_a_client_that_hangs_up_cancels_its_job(start_fake: StartDaemon) -> None:
	engine = FakeEngine(step_s=0.05)
	daemon = await start_fake(engine, http_overrides())
	assert daemon.http is not None
	body = {'prompt': 'abandoned', 'steps': 100, 'width': 64, 'height': 64}
	async with httpx.AsyncClient(timeout=0.5) as client:
		with pytest.raises(httpx.ReadTimeout):
			await client.post(f'http://127.0.0.1:{daemon.http.port}/sdapi/v1/txt2img', json=body)
	chan, gen = stubs(daemon)
	async with chan:
		for _ in range(400):
			if not (await gen.ListJobs(gen_pb.ListJobsRequest())).jobs:
				break
			await asyncio.sleep(0.05)
	assert len(engine.completed_steps) < 100, 'the job stopped when its client went away'
