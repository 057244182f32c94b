"""ExportArchive / ImportArchive: a full round trip, idempotence, and hostile archives refused whole."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import grpc
import pytest

from diffusiond.server.app import Daemon
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import style_service_pb2 as style_pb
from diffusiond.v1 import style_service_pb2_grpc as style_grpc
from tests.conftest import FAKE_MODEL, StartDaemon, make_settings, write_fake_model
from tests.fakes import FakeEngine
from tests.helpers import collect

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[history_pb.ArchiveChunk]:
	for start in range(0, len(data), size):
		yield history_pb.ArchiveChunk(data=data[start : start + size])


def _zip(members: Iterable[tuple[str, bytes]]) -> bytes:
	buffer = io.BytesIO()
	with zipfile.ZipFile(buffer, 'w') as archive:
		for name, data in members:
			archive.writestr(name, data)
	return buffer.getvalue()


@pytest.fixture
async def second(tmp_path: Path) -> AsyncIterator[Daemon]:
	"""Another daemon with its own, empty data folder."""
	data = tmp_path / 'second'
	write_fake_model(data / 'models' / FAKE_MODEL)
	daemon = Daemon(make_settings(data), FakeEngine())
	await daemon.start()
	yield daemon
	await daemon.shutdown(0.0)


async def test_round_trip_is_complete_and_idempotent(start_fake: StartDaemon, second: Daemon) -> None:
	first = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{first.port}') as chan:
		await style_grpc.StyleServiceStub(chan).CreateStyle(
			style_pb.CreateStyleRequest(style=style_pb.Style(name='Ink', prompt='ink {prompt}'))
		)
		update = model_pb.UpdateModelRequest(model=model_pb.Model(id=FAKE_MODEL, display_name='Fake one'))
		update.update_mask.paths.append('display_name')
		await model_grpc.ModelServiceStub(chan).UpdateModel(update)
		gen = gen_grpc.GenerationServiceStub(chan)
		jobs = [
			(await collect(gen.Generate(gen_pb.GenerateRequest(prompt=f'p{i}', steps=1, seed=i, styles=['Ink']))))[
				0
			].job_id
			for i in range(2)
		]
		history = history_grpc.HistoryServiceStub(chan)
		original = await history.GetImage(history_pb.GetImageRequest(generation_id=jobs[0], index=0))
		archive = b''.join(
			[chunk.data async for chunk in history.ExportArchive(history_pb.ExportArchiveRequest(include_images=True))]
		)
		bare = b''.join([chunk.data async for chunk in history.ExportArchive(history_pb.ExportArchiveRequest())])
	assert len(bare) < len(archive)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{second.port}') as chan:
		history = history_grpc.HistoryServiceStub(chan)
		counts = await history.ImportArchive(_chunks(archive))
		assert (counts.generations_created, counts.images, counts.styles_created, counts.models_updated) == (2, 2, 1, 1)
		again = await history.ImportArchive(_chunks(archive))
		assert (again.generations_created, again.generations_skipped, again.styles_created, again.images) == (
			0,
			2,
			0,
			0,
		)
		listed = (await history.ListGenerations(history_pb.ListGenerationsRequest())).generations
		assert sorted(generation.id for generation in listed) == sorted(jobs)
		copy = await history.GetImage(history_pb.GetImageRequest(generation_id=jobs[0], index=0))
		assert copy.data == original.data
		model = (await model_grpc.ModelServiceStub(chan).GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model
		assert model.display_name == 'Fake one'
		assert (
			await style_grpc.StyleServiceStub(chan).GetStyle(style_pb.GetStyleRequest(style='ink'))
		).style.prompt == 'ink {prompt}'


@pytest.mark.parametrize(
	('members', 'words'),
	[
		(
			[('manifest.json', b'{"format": "diffusiond-archive", "version": 1}'), ('images/../../evil.png', b'x')],
			'not a place',
		),
		([('manifest.json', b'{"format": "diffusiond-archive", "version": 1}'), ('notes.txt', b'x')], 'not a place'),
		([('styles.json', b'[]')], 'no manifest'),
		([('manifest.json', b'{"format": "other", "version": 1}')], 'unsupported'),
		(
			[
				('manifest.json', b'{"format": "diffusiond-archive", "version": 1}'),
				('styles.json', json.dumps([{'name': 'Would be new'}]).encode()),
				('generations.json', b'[{"id": 1}]'),
			],
			'damaged',
		),
	],
)
async def test_hostile_or_broken_archives_import_nothing(
	start_fake: StartDaemon, tmp_path: Path, members: list[tuple[str, bytes]], words: str
) -> None:
	daemon = await start_fake()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await history_grpc.HistoryServiceStub(chan).ImportArchive(_chunks(_zip(members)))
		assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
		assert words in str(caught.value.details())
		styles = (
			await style_grpc.StyleServiceStub(chan).ListStyles(style_pb.ListStylesRequest(query='would be new'))
		).styles
		assert list(styles) == []
	assert not (tmp_path / 'evil.png').exists()
	assert not list((tmp_path / 'tmp').glob('*')), 'the uploaded archive is not left behind'
	garbage = await _not_a_zip(daemon)
	assert garbage == grpc.StatusCode.INVALID_ARGUMENT


async def _not_a_zip(daemon: Daemon) -> grpc.StatusCode:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		with pytest.raises(grpc.aio.AioRpcError) as caught:
			await history_grpc.HistoryServiceStub(chan).ImportArchive(_chunks(b'not a zip at all'))
		return caught.value.code()
