"""Start-up recovery never removes a finished image: it removes only our own half-writes, attaches finished
files to their records, rebuilds records from the images' metadata when the database is new, and leaves
(and reports) what it cannot read."""

from __future__ import annotations

import asyncio
import io
import shutil
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from PIL import Image
from sqlalchemy import delete

from diffusiond.server.history.rebuild import REBUILT_NOTE
from diffusiond.server.schemas import JobState
from diffusiond.server.store.database import DATABASE_FILE
from diffusiond.server.store.tables import GenerationImageRow, GenerationRow
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import TINY_MODEL, StartDaemon, stubs
from tests.helpers import collect
from tests.processes import spawn_daemon

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL

FORMATS = (gen_pb.IMAGE_FORMAT_PNG, gen_pb.IMAGE_FORMAT_JPEG, gen_pb.IMAGE_FORMAT_WEBP)


def _files(outputs: Path) -> dict[str, bytes]:
	return {path.relative_to(outputs).as_posix(): path.read_bytes() for path in outputs.rglob('*') if path.is_file()}


async def _stop(process: asyncio.subprocess.Process) -> None:
	process.terminate()
	await asyncio.wait_for(process.wait(), 60)


async def test_a_new_database_rebuilds_the_history_from_the_images(tmp_path: Path, tiny_sd_dir: Path) -> None:
	"""Real daemon processes: three images (PNG, JPEG, WebP), the database deleted, a restart."""
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	process, address = await spawn_daemon(tmp_path)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			gen = gen_grpc.GenerationServiceStub(chan)
			ids = []
			for seed, fmt in enumerate(FORMATS):
				request = gen_pb.GenerateRequest(prompt=f'fox {seed}', steps=2, seed=seed, output_format=fmt)
				ids.append((await collect(gen.Generate(request)))[0].job_id)
			before = await history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest())
	finally:
		await _stop(process)
	outputs = tmp_path / 'outputs'
	files = _files(outputs)
	assert len(files) == 3
	for name in (DATABASE_FILE, f'{DATABASE_FILE}-wal', f'{DATABASE_FILE}-shm'):
		(tmp_path / name).unlink(missing_ok=True)
	process, address = await spawn_daemon(tmp_path)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			history = history_grpc.HistoryServiceStub(chan)
			after = (await history.ListGenerations(history_pb.ListGenerationsRequest())).generations
			image = await history.GetImage(history_pb.GetImageRequest(generation_id=ids[1], index=0))
	finally:
		await _stop(process)
	assert _files(outputs) == files, 'every finished image is still there, unchanged'
	assert sorted(record.id for record in after) == sorted(ids)
	old = {record.id: record for record in before.generations}
	for record in after:
		assert record.note == REBUILT_NOTE
		assert record.state == gen_pb.JOB_STATE_SUCCEEDED
		expected = old[record.id]
		assert (record.prompt, record.seeds, record.width, record.steps) == (
			expected.prompt,
			expected.seeds,
			expected.width,
			expected.steps,
		)
		assert (record.model_name, record.output_format) == (expected.model_name, expected.output_format)
		assert record.create_time == expected.create_time
		assert [image.path for image in record.images] == [image.path for image in expected.images]
	assert image.mime_type == 'image/jpeg'
	assert Image.open(io.BytesIO(image.data)).size == (64, 64)


async def test_finished_files_of_an_unrecorded_job_are_attached(start_fake: StartDaemon) -> None:
	"""A crash between renaming a job's files into place and recording them: the record lists them after restart."""
	daemon = await start_fake()
	chan, gen = stubs(daemon)
	async with chan:
		events = await collect(gen.Generate(gen_pb.GenerateRequest(prompt='kept', steps=1, num_images=2)))
	job_id = events[0].job_id
	async with daemon.database.sessions.begin() as session:  # the state a crash at that moment leaves
		await session.execute(delete(GenerationImageRow).where(GenerationImageRow.generation_id == job_id))
		row = await session.get(GenerationRow, job_id)
		assert row is not None
		row.state = JobState.RUNNING.value
	await daemon.shutdown(0.0)
	again = await start_fake()
	record = await again.history.get(job_id)
	assert again.recovery.attached == 2
	assert (record.state, [image.index for image in record.images]) == (JobState.SUCCEEDED, [0, 1])
	assert record.error == ''


async def test_only_our_own_half_writes_are_removed(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, gen = stubs(daemon)
	async with chan:
		job_id = (await collect(gen.Generate(gen_pb.GenerateRequest(prompt='kept', steps=1))))[0].job_id
	outputs = daemon.settings.storage.outputs_dir
	kept = next(outputs.rglob(f'{job_id}-0.png'))
	unreadable = outputs / '2026-01-01' / '00000000-0000-4000-8000-000000000000-0.png'
	unreadable.parent.mkdir(parents=True, exist_ok=True)
	unreadable.write_bytes(b'an image file nobody can read')
	mine = outputs / '2026-01-01' / 'holiday.png'  # the user's own file
	mine.write_bytes(b'user data')
	half = kept.parent / f'.{job_id}-1.png.tmp'
	half.write_bytes(b'cut')
	scratch = daemon.settings.storage.scratch_dir
	scratch.mkdir(exist_ok=True)
	upload = scratch / '.archive-k1ll3d.zip'
	upload.write_bytes(b'PK' + b'\0' * 1000)
	other = scratch / 'notes.txt'
	other.write_text('not ours')
	await daemon.shutdown(0.0)
	again = await start_fake()  # the same data folder
	assert all(path.exists() for path in (kept, unreadable, mine, other)), 'finished images and foreign files stay'
	assert not any(path.exists() for path in (half, upload)), 'our own half-writes go'
	assert again.recovery.temporary_removed == 2
	assert again.recovery.left == ['2026-01-01/00000000-0000-4000-8000-000000000000-0.png']


async def test_a_kill_during_an_archive_import_leaves_nothing_after_restart(tmp_path: Path) -> None:
	"""A real process SIGKILLed while it receives an archive: the upload's scratch file is gone at next start."""
	process, address = await spawn_daemon(tmp_path)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			history = history_grpc.HistoryServiceStub(chan)
			sent = asyncio.Event()

			async def chunks() -> AsyncIterator[history_pb.ArchiveChunk]:
				buffer = io.BytesIO()
				with zipfile.ZipFile(buffer, 'w') as archive:
					archive.writestr('manifest.json', '{"format": "diffusiond-archive", "version": 1}')
				yield history_pb.ArchiveChunk(data=buffer.getvalue())
				for _ in range(8):
					yield history_pb.ArchiveChunk(data=b'\0' * 1024 * 1024)
				sent.set()
				await asyncio.sleep(60)  # the import stays open until the kill

			call = history.ImportArchive(chunks())
			await asyncio.wait_for(sent.wait(), 30)
			for _ in range(100):
				if any((tmp_path / 'tmp').glob('.archive-*.zip')):
					break
				await asyncio.sleep(0.1)
			assert any((tmp_path / 'tmp').glob('.archive-*.zip')), 'the upload is being written'
			process.kill()
			await asyncio.wait_for(process.wait(), 30)
			call.cancel()
	finally:
		if process.returncode is None:
			process.kill()
	process, _ = await spawn_daemon(tmp_path)
	await _stop(process)
	assert list((tmp_path / 'tmp').glob('.archive-*')) == []
