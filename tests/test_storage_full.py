"""A full database or an outputs folder that cannot be written: precise statuses, no job left behind, and a
client that is told its images were not kept (with no partial file left on disk)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from diffusiond.server.app import Daemon
from diffusiond.server.error_status import domain_error_of
from diffusiond.server.errors import StorageFullError, StorageReadOnlyError
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import style_service_pb2 as style_pb
from diffusiond.v1 import style_service_pb2_grpc as style_grpc
from tests.conftest import FAKE_MODEL, TINY_MODEL, StartDaemon, make_settings, write_fake_model
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, rpc_error
from tests.processes import spawn_daemon


@pytest.fixture
async def full_database(tmp_path: Path) -> AsyncIterator[Daemon]:
	"""A daemon whose SQLite database cannot grow by a single page (what a full disk does to it)."""
	write_fake_model(tmp_path / 'models' / FAKE_MODEL)
	daemon = Daemon(make_settings(tmp_path), FakeEngine())
	pages: list[int] = []

	def cap(connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
		if pages:
			cursor = connection.cursor()
			cursor.execute(f'PRAGMA max_page_count = {pages[0]}')
			cursor.close()

	event.listen(daemon.database.engine.sync_engine.pool, 'checkout', cap)  # every use, pooled ones too
	await daemon.start()
	await daemon.ready.wait()
	pages.append(_fill(daemon.settings.storage.data_dir / 'diffusiond.db'))
	yield daemon
	await daemon.shutdown(0.0)


def _fill(database: Path) -> int:
	"""Uses up every free page of the file and caps it there: the page count it is capped at."""
	connection = sqlite3.connect(database)
	try:
		connection.execute('PRAGMA wal_checkpoint(TRUNCATE)')
		pages = int(connection.execute('PRAGMA page_count').fetchone()[0]) + 2  # room for the filler table
		connection.execute(f'PRAGMA max_page_count = {pages}')
		connection.execute('CREATE TABLE filler (data BLOB)')
		with contextlib.suppress(sqlite3.OperationalError):  # "database or disk is full": what we want
			while True:
				connection.execute('INSERT INTO filler VALUES (zeroblob(256))')
				connection.commit()
		connection.rollback()
		return int(connection.execute('PRAGMA page_count').fetchone()[0])
	finally:
		connection.close()


async def test_a_full_database_is_resource_exhausted_and_leaves_no_job(full_database: Daemon) -> None:
	path = str(full_database.settings.storage.data_dir / 'diffusiond.db')
	async with grpc.aio.insecure_channel(f'127.0.0.1:{full_database.port}') as chan:
		styles = style_grpc.StyleServiceStub(chan)
		big = style_pb.Style(name='Ink', prompt='x' * 4000, negative_prompt='y' * 4000)
		create = await rpc_error(styles.CreateStyle(style_pb.CreateStyleRequest(style=big)))
		csv = ('name,prompt,negative_prompt\n' + ''.join(f'S{i},{"x" * 3000},\n' for i in range(20))).encode()
		imported = await rpc_error(styles.ImportStyles(style_pb.ImportStylesRequest(csv=csv)))
		many = [f'tag {i} ' + 'z' * 100 for i in range(64)]
		update = model_pb.UpdateModelRequest(model=model_pb.Model(id=FAKE_MODEL, display_name='x' * 500, tags=many))
		update.update_mask.paths.extend(['display_name', 'tags'])
		updated = await rpc_error(model_grpc.ModelServiceStub(chan).UpdateModel(update))
		events = await collect(
			gen_grpc.GenerationServiceStub(chan).Generate(
				gen_pb.GenerateRequest(prompt='a fox ' * 600, steps=2, width=64, height=64)  # a record of pages
			)
		)
		jobs = await gen_grpc.GenerationServiceStub(chan).ListJobs(gen_pb.ListJobsRequest())
		listed = await history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest())
	for error in (create, imported, updated):
		assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
		info, _ = error_details(error)
		assert (info.reason, info.metadata['path']) == ('STORAGE_FULL', path)
		assert path in str(error.details())
	completed = events[-1].completed
	assert [event.image.width for event in events if event.HasField('image')] == [64]
	assert completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert completed.storage == gen_pb.STORAGE_STATE_NOT_STORED
	assert 'the history could not record the job' in completed.storage_error
	assert 'is full' in completed.storage_error
	assert [job.job_id for job in jobs.jobs] == []
	assert list(listed.generations) == []
	assert not list(full_database.settings.storage.outputs_dir.rglob('*')), 'nothing half-kept'
	assert full_database.manager.queue.snapshot() == []


async def test_unwritable_outputs_tell_the_client_and_leave_no_partial_file(tmp_path: Path) -> None:
	"""The day's folder cannot be created (a file holds its name): the images come on the stream, marked not kept."""
	write_fake_model(tmp_path / 'models' / FAKE_MODEL)
	daemon = Daemon(make_settings(tmp_path), FakeEngine())
	await daemon.start()
	await daemon.ready.wait()
	outputs = daemon.settings.storage.outputs_dir
	outputs.mkdir(parents=True, exist_ok=True)
	(outputs / datetime.now(UTC).strftime('%Y-%m-%d')).write_text('in the way')
	try:
		async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
			request = gen_pb.GenerateRequest(prompt='a fox', steps=2, width=64, height=64, num_images=2)
			events = await collect(gen_grpc.GenerationServiceStub(chan).Generate(request))
			listed = await history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest())
	finally:
		await daemon.shutdown(0.0)
	completed = events[-1].completed
	assert len([event for event in events if event.HasField('image')]) == 2
	assert completed.storage == gen_pb.STORAGE_STATE_NOT_STORED
	assert 'the images could not be written' in completed.storage_error
	assert str(outputs) in completed.storage_error
	assert list(listed.generations) == [], 'no record of images that are not on disk'
	assert [path.name for path in outputs.rglob('*')] == [datetime.now(UTC).strftime('%Y-%m-%d')]


async def test_stored_images_say_so(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		events = await collect(
			gen_grpc.GenerationServiceStub(chan).Generate(gen_pb.GenerateRequest(prompt='a fox', steps=1))
		)
	assert (events[-1].completed.storage, events[-1].completed.storage_error) == (gen_pb.STORAGE_STATE_STORED, '')


def test_disk_errors_from_the_os_map_to_storage_errors() -> None:
	"""A real ENOSPC (writing to /dev/full) and EROFS become the domain's storage errors; others stay bugs."""
	with open('/dev/full', 'wb', buffering=0) as device, pytest.raises(OSError, match='No space left') as full:
		device.write(b'x')
	assert full.value.errno == errno.ENOSPC
	mapped = domain_error_of(OSError(full.value.errno, full.value.strerror, '/data/outputs/x.png'))
	assert isinstance(mapped, StorageFullError)
	assert '/data/outputs/x.png' in mapped.message
	assert isinstance(domain_error_of(OSError(errno.EROFS, 'Read-only file system', '/data')), StorageReadOnlyError)
	assert domain_error_of(OSError(errno.ENOENT, 'No such file')) is None
	assert domain_error_of(KeyError('x')) is None


async def test_a_real_daemon_on_a_full_disk_says_the_images_were_not_kept(tmp_path: Path, tiny_sd_dir: Path) -> None:
	"""A real daemon process whose files may not grow past 160 KiB (RLIMIT_FSIZE: the kernel answers EFBIG, as a
	full disk answers ENOSPC): a 256x256 uncompressed PNG (192 KiB) cannot be written, and the client is told. The
	database (about 120 KiB) and its write-ahead log stay under the limit, so the record can be taken back."""
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	first, _ = await spawn_daemon(tmp_path)  # creates the database while there is room
	first.terminate()
	await asyncio.wait_for(first.wait(), 60)
	limit = 160 * 1024

	def full_disk() -> None:
		resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

	process, address = await spawn_daemon(
		tmp_path, preexec=full_disk, env={'DIFFUSIOND_DEVICE__PNG_COMPRESS_LEVEL': '0'}
	)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			request = gen_pb.GenerateRequest(prompt='a fox', steps=1, width=256, height=256, seed=3)
			events = await collect(gen_grpc.GenerationServiceStub(chan).Generate(request))
			listed = await history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest())
	finally:
		process.terminate()
		await asyncio.wait_for(process.wait(), 60)
	completed = events[-1].completed
	image = next(event.image for event in events if event.HasField('image'))
	assert len(image.data) > limit, 'the image itself came through'
	assert completed.storage == gen_pb.STORAGE_STATE_NOT_STORED
	assert 'File too large' in completed.storage_error
	assert str(tmp_path / 'outputs') in completed.storage_error
	assert list(listed.generations) == []
	assert not [path for path in (tmp_path / 'outputs').rglob('*') if path.is_file()], 'no partial file left'
