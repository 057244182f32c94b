"""The node id: generated once per data folder (or set), carried by every record, and the border of start-up
recovery, which fails only its own node's running records (several daemons may share one database)."""

import re
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from diffusiond.server.node import NODE_FILE, resolve_node_id
from diffusiond.server.schemas import JobState
from diffusiond.server.settings import StorageSettings
from diffusiond.server.store.database import Database
from diffusiond.server.store.tables import GenerationRow
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc
from tests.conftest import StartDaemon, stubs
from tests.helpers import collect


async def _node_and_record(port: int) -> tuple[str, str]:
	"""GetSystemInfo's node, and the node of a fresh generation's record."""
	async with grpc.aio.insecure_channel(f'127.0.0.1:{port}') as chan:
		info = await sys_grpc.SystemServiceStub(chan).GetSystemInfo(sys_pb.GetSystemInfoRequest())
		events = await collect(
			gen_grpc.GenerationServiceStub(chan).Generate(gen_pb.GenerateRequest(prompt='n', steps=1))
		)
		history = history_grpc.HistoryServiceStub(chan)
		record = await history.GetGeneration(history_pb.GetGenerationRequest(id=events[0].job_id))
	return info.node, record.generation.node


async def test_a_generated_node_id_is_kept_across_restarts_and_recorded(
	start_fake: StartDaemon, tmp_path: Path
) -> None:
	daemon = await start_fake()
	node, recorded = await _node_and_record(daemon.port)
	assert re.fullmatch(r'node-[0-9a-f]{12}', node)
	assert recorded == node
	assert (tmp_path / NODE_FILE).read_text().strip() == node
	await daemon.shutdown(0.0)
	again = await start_fake()
	assert (await _node_and_record(again.port)) == (node, node), 'the same data folder keeps its node id'


async def test_a_configured_node_id_wins(start_fake: StartDaemon, tmp_path: Path) -> None:
	daemon = await start_fake(overrides={'storage': {'node_id': 'gpu-box.2'}})
	assert await _node_and_record(daemon.port) == ('gpu-box.2', 'gpu-box.2')
	assert not (tmp_path / NODE_FILE).exists()


async def test_recovery_fails_only_this_nodes_running_records(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides={'storage': {'node_id': 'alpha'}})
	chan, gen = stubs(daemon)
	async with chan:
		ids = [
			(await collect(gen.Generate(gen_pb.GenerateRequest(prompt=f'p{i}', steps=1))))[0].job_id for i in range(3)
		]
	owners = dict(zip(ids, ['alpha', 'beta', ''], strict=True))
	async with daemon.database.sessions.begin() as session:  # what three crashed runs, of two daemons, leave
		for job_id, node in owners.items():
			row = await session.get(GenerationRow, job_id)
			assert row is not None
			row.state, row.node = JobState.RUNNING.value, node
	await daemon.shutdown(0.0)
	again = await start_fake(overrides={'storage': {'node_id': 'alpha'}})
	states = {owners[job_id]: (await again.history.get(job_id)).state for job_id in ids}
	assert states == {'alpha': JobState.FAILED, 'beta': JobState.RUNNING, '': JobState.FAILED}
	assert again.recovery.failed_jobs == 2


async def test_records_from_before_nodes_upgrade_to_no_node(start_fake: StartDaemon, tmp_path: Path) -> None:
	database = Database(f'sqlite+aiosqlite:///{tmp_path / "diffusiond.db"}')
	await database.upgrade('0006')
	now = datetime.now(UTC).isoformat()
	async with database.engine.begin() as connection:
		await connection.execute(
			text(
				'INSERT INTO generations (id, created_at, finished_at, model_id, model_name, model_hash, prompt, '
				'negative_prompt, styles, loras, spec, scheduler, device, timings, favourite, tags, note, state, error) '
				"VALUES ('old', :now, :now, 'm', 'm', '', 'p', '', '[]', '[]', '{}', 's', 'cpu', '{}', 0, '[]', '', "
				"'running', '')"
			),
			{'now': now},
		)
	await database.close()
	daemon = await start_fake()
	assert await daemon.database.revision() == '0017'
	record = await daemon.history.get('old')
	assert (record.node, record.state) == ('', JobState.FAILED), "a pre-node running record is anyone's to fail"


def test_node_ids_are_checked_and_a_damaged_file_is_replaced(tmp_path: Path) -> None:
	with pytest.raises(ValidationError):
		StorageSettings(node_id='no spaces')
	with pytest.raises(ValidationError):
		StorageSettings(node_id='x' * 65)
	(tmp_path / NODE_FILE).write_bytes(b'\xff\xfe')
	fresh = resolve_node_id('', tmp_path)
	assert re.fullmatch(r'node-[0-9a-f]{12}', fresh)
	assert resolve_node_id('', tmp_path) == fresh
	assert resolve_node_id('set', tmp_path) == 'set'
