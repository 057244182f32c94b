"""Daemons on one database see each other: each node's lease (a heartbeat renews it), its device, queue and
loaded models in GetSystemInfo; a stopped node is no longer alive; a restart takes a new epoch, and a heartbeat
from the old one changes nothing (the fencing the shared queue will rely on). On SQLite and PostgreSQL."""

import asyncio
from pathlib import Path

import grpc
import pytest

from diffusiond.client.aio import AsyncClient
from diffusiond.client.connection import Connection
from diffusiond.server.app import Daemon
from diffusiond.server.cluster.heartbeat import Heartbeat
from diffusiond.server.node_records import NodeStatus
from diffusiond.server.settings import ClusterSettings
from diffusiond.server.store.database import Database, default_url
from diffusiond.server.store.node_repo import NodeRepository
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import FAKE_MODEL, make_settings, write_fake_model
from tests.fakes import FakeEngine

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


async def _start(root: Path, node: str, url: str) -> Daemon:
	data = root / node
	if not (data / 'models' / FAKE_MODEL).exists():  # a restart finds its folder
		write_fake_model(data / 'models' / FAKE_MODEL)
	overrides: dict[str, dict[str, object]] = {
		'storage': {'node_id': node, 'database_url': url},
		'cluster': {'heartbeat_s': 0.05, 'lease_s': 5.0},
	}
	daemon = Daemon(make_settings(data, overrides), FakeEngine())
	await daemon.start()
	await asyncio.wait_for(daemon.ready.wait(), 30)
	return daemon


async def _nodes(daemon: Daemon) -> dict[str, sys_pb.NodeInfo]:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		stub: sys_grpc.SystemServiceAsyncStub = sys_grpc.SystemServiceStub(channel)
		info = await stub.GetSystemInfo(sys_pb.GetSystemInfoRequest())
	return {node.node: node for node in info.nodes}


async def _until(daemon: Daemon, node: str, alive: bool, loaded: bool = False) -> sys_pb.NodeInfo:
	async with asyncio.timeout(30):
		while True:
			found = (await _nodes(daemon)).get(node)
			if found is not None and found.alive == alive and (not loaded or list(found.loaded_models)):
				return found
			await asyncio.sleep(0.02)


async def test_daemons_on_one_database_see_each_other(tmp_path: Path, store_url: str | None) -> None:
	url = store_url or f'sqlite+aiosqlite:///{tmp_path / "shared.db"}'
	first = await _start(tmp_path, 'node-a', url)
	second = await _start(tmp_path, 'node-b', url)
	try:
		seen = await _until(first, 'node-b', alive=True, loaded=True)
		both, port = await _nodes(second), second.port
		await second.shutdown(0.0)
		stopped = await _until(first, 'node-b', alive=False)
		second = await _start(tmp_path, 'node-b', url)
		again = await _until(first, 'node-b', alive=True)
		stale = await second.nodes.beat('node-b', 1, NodeStatus(queue_depth=0, busy=False, loaded=[]))
	finally:
		await second.shutdown(0.0)
		await first.shutdown(0.0)
	assert sorted(both) == ['node-a', 'node-b']
	assert (seen.address, seen.device, seen.epoch) == (f'127.0.0.1:{port}', 'cpu: fake', 1)
	assert list(seen.loaded_models) == [FAKE_MODEL]
	assert list(seen.models) == [FAKE_MODEL]
	assert (seen.queue_depth, seen.busy) == (0, False)
	assert seen.heartbeat_time.ToDatetime() >= seen.start_time.ToDatetime()
	assert not stopped.alive
	assert again.epoch == 2
	assert stale is False


async def _model(daemon: Daemon, name: str) -> model_pb.Model:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		stub: model_grpc.ModelServiceAsyncStub = model_grpc.ModelServiceStub(channel)
		return (await stub.GetModel(model_pb.GetModelRequest(model=name))).model


async def test_on_a_shared_queue_each_daemon_keeps_its_own_catalog(tmp_path: Path, postgres_url: str) -> None:
	write_fake_model(tmp_path / 'node-b' / 'models' / 'only-on-b')
	first = await _start(tmp_path, 'node-a', postgres_url)
	second = await _start(tmp_path, 'node-b', postgres_url)
	try:
		await _until(first, 'node-b', alive=True, loaded=True)
		shared = await _model(first, FAKE_MODEL)
		own = await _model(second, 'only-on-b')
		with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
			await _model(first, 'only-on-b')
	finally:
		await second.shutdown(0.0)
		await first.shutdown(0.0)
	assert sorted(shared.nodes) == ['node-a', 'node-b']
	assert list(own.nodes) == ['node-b']
	assert elsewhere.value.code() == grpc.StatusCode.NOT_FOUND, "node-a's catalog is its own folder's"
	assert (tmp_path / 'node-a' / 'diffusiond.db').exists(), 'each keeps its catalog in its data folder'


async def test_a_client_given_several_daemons_spreads_its_calls(tmp_path: Path, store_url: str | None) -> None:
	url = store_url or f'sqlite+aiosqlite:///{tmp_path / "shared.db"}'
	first = await _start(tmp_path, 'node-a', url)
	second = await _start(tmp_path, 'node-b', url)
	try:
		client = AsyncClient(f'127.0.0.1:{first.port}, localhost:{second.port}')
		answered: list[str] = []
		async with asyncio.timeout(30):  # round_robin uses a daemon once its connection is ready
			while set(answered) != {'node-a', 'node-b'}:
				answered.append((await client.system_info()).node)
		last = [(await client.system_info()).node for _ in range(4)]
		await client.close()
	finally:
		await second.shutdown(0.0)
		await first.shutdown(0.0)
	assert set(answered) == {'node-a', 'node-b'}
	assert sorted(last) == ['node-a', 'node-a', 'node-b', 'node-b'], 'both ready: calls alternate'


def test_several_addresses_make_one_round_robin_target() -> None:
	both = Connection.resolve('localhost:5001,127.0.0.1:5002')
	assert both.target() == 'ipv4:127.0.0.1:5001,127.0.0.1:5002'
	assert ('grpc.lb_policy_name', 'round_robin') in both.options()
	assert both.local
	assert Connection.resolve('dns:///diffusiond.internal:50051').balanced
	one = Connection.resolve('localhost:5001')
	assert (one.target(), one.balanced) == ('localhost:5001', False)
	with pytest.raises(ValueError, match='is not host:port'):
		Connection.resolve('localhost:5001,nowhere').target()


async def test_a_node_the_store_cannot_take_yet_registers_later(tmp_path: Path) -> None:
	database = Database(default_url(tmp_path))
	idle = NodeStatus(queue_depth=0, busy=False, loaded=[])

	async def status() -> NodeStatus:
		return idle

	heartbeat = Heartbeat(NodeRepository(database.sessions), status, ClusterSettings(heartbeat_s=0.05))
	try:
		await heartbeat.start('node-x', 'here:1', 'cpu: test')  # no tables yet: the daemon would serve meanwhile
		unregistered = heartbeat.epoch
		await database.upgrade()
		async with asyncio.timeout(30):
			while True:
				if heartbeat.epoch:
					break
				await asyncio.sleep(0.02)
		await heartbeat.stop()
		nodes = await heartbeat.repo.all()
	finally:
		await database.close()
	assert unregistered == 0
	assert [(node.id, node.epoch, node.serving) for node in nodes] == [('node-x', 1, False)]
