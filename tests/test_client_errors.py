"""The client's exception hierarchy, retries of idempotent reads, never of Generate, per-view deadlines."""

import asyncio
import socket
import time
from pathlib import Path

import pytest

from diffusiond.client import (
	AsyncClient,
	Client,
	DeadlineExceeded,
	DiffusiondError,
	InvalidArgument,
	NotFound,
	ResourceExhausted,
	Unavailable,
)
from diffusiond.server.app import Daemon
from tests.conftest import StartDaemon
from tests.fakes import FakeEngine


def _free_port() -> int:
	with socket.socket() as probe:
		probe.bind(('127.0.0.1', 0))
		port: int = probe.getsockname()[1]
		return port


async def test_errors_carry_code_reason_and_fields(daemon: Daemon) -> None:
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		with pytest.raises(NotFound) as missing:
			await client.get_model('no-such-model')
		with pytest.raises(InvalidArgument) as invalid:
			await client.generate_images('x', steps=9999, width=65)
	assert missing.value.reason == 'MODEL_NOT_FOUND'
	assert 'no-such-model' in missing.value.message
	assert set(invalid.value.field_violations) == {'steps', 'width'}
	assert isinstance(invalid.value, DiffusiondError)
	assert invalid.value.__cause__ is not None, 'the gRPC error stays reachable'


async def test_sync_client_raises_the_same_classes(daemon: Daemon) -> None:
	def calls() -> tuple[str, str]:
		with Client(f'127.0.0.1:{daemon.port}') as client:
			with pytest.raises(NotFound) as missing:
				client.get_lora('no-such-lora')
			with pytest.raises(InvalidArgument) as invalid:
				list(client.generate('x', steps=0))
		return missing.value.reason, invalid.value.reason

	assert await asyncio.to_thread(calls) == ('LORA_NOT_FOUND', 'INVALID_ARGUMENT')


async def test_queue_full_says_when_to_retry(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.05), {'limits': {'max_queue': 1}})
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		running = client.generate('a', steps=40)
		assert (await anext(running)).HasField('queued')
		waiting = client.generate('b', steps=1)
		assert (await anext(waiting)).HasField('queued')
		with pytest.raises(ResourceExhausted) as full:
			await client.generate_images('c', steps=1)
		await running.aclose()
		await waiting.aclose()
	assert full.value.reason == 'QUEUE_FULL'
	assert full.value.retry_after is not None
	assert full.value.retry_after >= 1.0


async def test_reads_are_retried_until_the_daemon_is_back(start_fake: StartDaemon, tmp_path: Path) -> None:
	port = _free_port()

	def list_soon() -> int:
		with Client(f'127.0.0.1:{port}', timeout=20) as client:
			return len(client.list_models())

	listing = asyncio.create_task(asyncio.to_thread(list_soon))
	await asyncio.sleep(0.5)  # the first attempts find nobody listening
	await start_fake(overrides={'server': {'port': port}})
	assert await asyncio.wait_for(listing, 20) == 1


async def test_generate_is_never_retried() -> None:
	port = _free_port()
	async with AsyncClient(f'127.0.0.1:{port}', timeout=20) as client:
		began = time.monotonic()
		with pytest.raises(Unavailable):
			await client.generate_images('x')
	assert time.monotonic() - began < 1.0, 'one attempt, no backoff'


async def test_with_timeout_sets_the_deadline_of_a_view(start_fake: StartDaemon) -> None:
	daemon = await start_fake(FakeEngine(step_s=0.05))
	async with AsyncClient(f'127.0.0.1:{daemon.port}') as client:
		with pytest.raises(DeadlineExceeded):
			await client.with_timeout(0.3).generate_images('slow', steps=40)
		assert client.timeout is None
		assert len(await client.list_models()) == 1
