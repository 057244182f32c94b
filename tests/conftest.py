"""Fixtures: the tiny real model (built once per run), the real daemon on 127.0.0.1:0, stubs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc

from diffusiond.server.app import Daemon
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.jobs.engine_api import Engine
from diffusiond.server.settings import Settings
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.fakes import FakeEngine
from tests.s3_server import new_bucket, s3_server
from tests.stores import POSTGRESQL, SQLITE, fresh_database, postgres_server

TINY_MODEL = 'tiny-sd'
FAKE_MODEL = 'fake-model'

Overrides = dict[str, dict[str, object]]


class StartDaemon(Protocol):
	async def __call__(
		self, backend: Engine | None = None, overrides: Overrides | None = None, wait: bool = True
	) -> Daemon: ...


def make_settings(data_dir: Path, overrides: Overrides | None = None) -> Settings:
	data: dict[str, dict[str, object]] = {
		'server': {'host': '127.0.0.1', 'port': 0, 'grace_period_s': 5.0},
		'storage': {'data_dir': str(data_dir)},
		'models': {'demo_model': False, 'hub_cache_dir': str(data_dir / 'hub-cache')},  # not the user's cache
		'loras': {'text_embeddings': False},  # the sentence model loads only where a test asks (test_recommend.py)
	}
	for group, values in (overrides or {}).items():
		data.setdefault(group, {}).update(values)
	return Settings.model_validate(data)


def write_fake_model(folder: Path, cross_attention_dim: int = 32) -> Path:
	"""A diffusers folder with configs and empty weight files: enough for the catalog and a fake backend."""
	(folder / 'unet').mkdir(parents=True)
	(folder / 'vae').mkdir()
	(folder / 'model_index.json').write_text(json.dumps({'_class_name': 'StableDiffusionPipeline'}))
	unet = {
		'cross_attention_dim': cross_attention_dim,
		'in_channels': 4,
		'block_out_channels': [32, 64],
		'sample_size': 32,
	}
	(folder / 'unet' / 'config.json').write_text(json.dumps(unet))
	(folder / 'vae' / 'config.json').write_text(json.dumps({'block_out_channels': [32, 64]}))
	for component in (
		'unet',
		'vae',
	):  # placeholders: the catalog checks the weights are there, the fake never reads them
		(folder / component / 'diffusion_pytorch_model.safetensors').write_bytes(b'')
	return folder


@pytest.fixture(autouse=True)
def _cli_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	"""`diffusionctl` keeps `loras suggest --apply` tags in $XDG_STATE_HOME: each test has its own."""
	monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path / 'state'))


@pytest.fixture(scope='session')
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""The tiny random Stable Diffusion, saved once per test run inside a data dir's models folder."""
	return build_demo_model(tmp_path_factory.mktemp('data') / 'models' / TINY_MODEL)


@pytest.fixture(scope='session')
async def daemon(tiny_sd_dir: Path) -> AsyncIterator[Daemon]:
	"""The real daemon with the real tiny pipeline on CPU, shared by the tests that do not stop it."""
	instance = Daemon(make_settings(tiny_sd_dir.parent.parent))
	await instance.start()
	await asyncio.wait_for(instance.ready.wait(), 120)
	yield instance
	await instance.shutdown(2.0)


@pytest.fixture(scope='session')
async def channel(daemon: Daemon) -> AsyncIterator[grpc.aio.Channel]:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		yield chan


@pytest.fixture
def gen(channel: grpc.aio.Channel) -> gen_grpc.GenerationServiceAsyncStub:
	return gen_grpc.GenerationServiceStub(channel)


@pytest.fixture
def system(channel: grpc.aio.Channel) -> sys_grpc.SystemServiceAsyncStub:
	return sys_grpc.SystemServiceStub(channel)


@pytest.fixture
def models(channel: grpc.aio.Channel) -> model_grpc.ModelServiceAsyncStub:
	return model_grpc.ModelServiceStub(channel)


@pytest.fixture
def health(channel: grpc.aio.Channel) -> health_pb2_grpc.HealthStub:
	return health_pb2_grpc.HealthStub(channel)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
	"""A test module with `BOTH_STORES = True` runs each of its tests whose daemons use `store_url` on SQLite and
	on PostgreSQL (the store, queue and history tests)."""
	if 'store_url' in metafunc.fixturenames and getattr(metafunc.module, 'BOTH_STORES', False):
		metafunc.parametrize('store_url', [SQLITE, POSTGRESQL], indirect=True)


@pytest.fixture(scope='session', name='postgres_server')
def _postgres_server() -> Iterator[str]:
	yield from postgres_server()


@pytest.fixture(scope='session', name='s3_endpoint')
def _s3_endpoint() -> Iterator[str]:
	"""A real S3-compatible server on 127.0.0.1 (moto's server mode), for the outputs store tests."""
	yield from s3_server()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
	"""A fresh bucket on `s3_endpoint` (the credentials set in the environment, where boto3 reads them)."""
	return new_bucket(s3_endpoint, monkeypatch)


@pytest.fixture
async def store_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
	"""The database the test's daemons use: None = SQLite in the data dir (the default); `both_stores`
	(tests/stores.py) runs a test on PostgreSQL as well, in a database of its own."""
	if getattr(request, 'param', None) != POSTGRESQL:
		yield None
		return
	server: str = request.getfixturevalue('postgres_server')
	async for url in fresh_database(server):
		yield url


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
	"""A fresh database on the test PostgreSQL, for the tests only PostgreSQL can run (several daemons on one)."""
	async for url in fresh_database(postgres_server):
		yield url


def with_store(overrides: Overrides | None, url: str | None) -> Overrides:
	merged = {group: dict(values) for group, values in (overrides or {}).items()}
	if url is not None:  # the catalog too (by default a daemon on a shared queue keeps its own in SQLite)
		merged.setdefault('storage', {}).update(database_url=url, catalog_url=url)
	return merged


@pytest.fixture
async def start_fake(tmp_path: Path, store_url: str | None) -> AsyncIterator[StartDaemon]:
	"""Starts daemons with a fake backend (or the one given) in a fresh data dir; stops them after the test."""
	started: list[Daemon] = []
	model = tmp_path / 'models' / FAKE_MODEL
	write_fake_model(model)

	async def start(backend: Engine | None = None, overrides: Overrides | None = None, wait: bool = True) -> Daemon:
		instance = Daemon(make_settings(tmp_path, with_store(overrides, store_url)), backend or FakeEngine())
		await instance.start()
		started.append(instance)
		if wait:
			await asyncio.wait_for(instance.ready.wait(), 30)
		return instance

	yield start
	for instance in started:
		await instance.shutdown(0.0)


class StartReal(Protocol):
	async def __call__(self, overrides: Overrides | None = None) -> Daemon: ...


@pytest.fixture
async def start_real(tmp_path: Path, store_url: str | None) -> AsyncIterator[StartReal]:
	"""Starts daemons built the production way (real backend, settings only) on a data dir in `tmp_path`."""
	started: list[Daemon] = []

	async def start(overrides: Overrides | None = None) -> Daemon:
		instance = Daemon(make_settings(tmp_path, with_store(overrides, store_url)))
		await instance.start()
		started.append(instance)
		await asyncio.wait_for(instance.ready.wait(), 60)
		return instance

	yield start
	for instance in started:
		await instance.shutdown(0.0)


def stubs(daemon: Daemon) -> tuple[grpc.aio.Channel, gen_grpc.GenerationServiceAsyncStub]:
	chan = grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}')
	return chan, gen_grpc.GenerationServiceStub(chan)


def model_stubs(daemon: Daemon) -> tuple[grpc.aio.Channel, model_grpc.ModelServiceAsyncStub]:
	chan = grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}')
	return chan, model_grpc.ModelServiceStub(chan)
