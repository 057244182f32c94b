"""Hostile archives: nothing outside the outputs folder is read or written, bombs cost at most a cap, every
imported value passes the same rules as the RPCs that set it, and a refused archive imports nothing."""

from __future__ import annotations

import copy
import json
import resource
from pathlib import Path

import grpc
import pytest
from sqlalchemy import update

from diffusiond.server.app import Daemon
from diffusiond.server.records import HistoryFilter
from diffusiond.server.store.tables import GenerationImageRow
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.archives import Json, chunks, export, records, rezip, with_records, zip_members, zip_with_filler
from tests.conftest import FAKE_MODEL, StartDaemon, make_settings, write_fake_model
from tests.fakes import FakeEngine
from tests.helpers import collect, error_details, rpc_error

SECRET = b'the secret next to the data folder'


@pytest.fixture
async def exported(tmp_path: Path) -> dict[str, bytes]:
	"""A real export (with images) of a daemon that ran two jobs, with one style, model and LoRA entry."""
	data = tmp_path / 'source'
	write_fake_model(data / 'models' / FAKE_MODEL)
	daemon = Daemon(make_settings(data), FakeEngine())
	await daemon.start()
	await daemon.ready.wait()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		gen = gen_grpc.GenerationServiceStub(chan)
		for seed in (1, 2):
			await collect(gen.Generate(gen_pb.GenerateRequest(prompt=f'fox {seed}', steps=1, seed=seed)))
		members = await export(chan)
	await daemon.shutdown(0.0)
	return members


async def _import(daemon: Daemon, data: bytes) -> history_pb.ImportArchiveResponse | grpc.aio.AioRpcError:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		history = history_grpc.HistoryServiceStub(chan)
		try:
			return await history.ImportArchive(chunks(data))
		except grpc.aio.AioRpcError as error:
			return error


async def _refused(daemon: Daemon, data: bytes, *words: str) -> grpc.aio.AioRpcError:
	"""Imports `data`, expects INVALID_ARGUMENT naming `words`, and checks that nothing was imported."""
	answer = await _import(daemon, data)
	assert isinstance(answer, grpc.aio.AioRpcError), 'the archive was accepted'
	assert answer.code() == grpc.StatusCode.INVALID_ARGUMENT, answer.details()
	text = str(answer.details())
	for word in words:
		assert word in text, text
	assert 'nothing was imported' in text
	storage = daemon.settings.storage
	assert await daemon.history.page(HistoryFilter(), None, 10) == []
	assert not [path for path in storage.outputs_dir.rglob('*') if path.is_file()], 'no file was written'
	assert not list(storage.scratch_dir.glob('*')), 'the upload is not left behind'
	return answer


def _part(record: Json, where: str) -> Json:
	"""`record` itself (''), its 'spec', or its first image ('images')."""
	if not where:
		return record
	value = record[where]
	part = value[0] if isinstance(value, list) else value
	assert isinstance(part, dict)
	return part


def _mutated(exported: dict[str, bytes], change: Json, where: str = '') -> bytes:
	changed = copy.deepcopy(records(exported))
	_part(changed[0], where).update(change)
	return rezip(with_records(exported, changed))


async def test_paths_outside_the_outputs_folder_are_refused_and_never_read(
	start_fake: StartDaemon, exported: dict[str, bytes], tmp_path: Path
) -> None:
	daemon = await start_fake()
	(tmp_path / 'secret.txt').write_bytes(SECRET)
	for path in ('../secret.txt', '../../secret.txt', str(tmp_path / 'secret.txt'), '2026-01-01/../../secret.txt'):
		await _refused(daemon, _mutated(exported, {'path': path}, 'images'), 'path', 'is not an outputs path')
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		members = await export(chan)
	assert all(SECRET not in data for data in members.values())


async def test_a_record_naming_another_records_file_is_refused(
	start_fake: StartDaemon, exported: dict[str, bytes]
) -> None:
	daemon = await start_fake()
	first, second = records(exported)
	_part(second, 'images')['path'] = _part(first, 'images')['path']
	await _refused(daemon, rezip(with_records(exported, [first, second])), 'is not the file of image 0 of')


async def test_stored_paths_are_resolved_inside_outputs_on_every_read(start_fake: StartDaemon, tmp_path: Path) -> None:
	"""Old or hand-edited rows that point outside (a path, or a symlink inside outputs): never read, never deleted."""
	daemon = await start_fake()
	secret = tmp_path / 'secret.txt'
	secret.write_bytes(SECRET)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		gen = gen_grpc.GenerationServiceStub(chan)
		ids = [(await collect(gen.Generate(gen_pb.GenerateRequest(prompt='x', steps=1))))[0].job_id for _ in range(2)]
	outputs = daemon.settings.storage.outputs_dir
	link = next(outputs.rglob(f'{ids[1]}-0.png'))
	link.unlink()
	link.symlink_to(secret)
	async with daemon.database.sessions.begin() as session:
		await session.execute(
			update(GenerationImageRow).where(GenerationImageRow.generation_id == ids[0]).values(path='../secret.txt')
		)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		history = history_grpc.HistoryServiceStub(chan)
		members = await export(chan)
		answers = [
			await rpc_error(history.GetImage(history_pb.GetImageRequest(generation_id=job, index=0, thumbnail_size=s)))
			for job in ids
			for s in (0, 64)
		]
		for job in ids:
			await history.DeleteGeneration(history_pb.DeleteGenerationRequest(id=job))
		left = (await history.ListGenerations(history_pb.ListGenerationsRequest())).generations
	assert all(SECRET not in data for data in members.values()), 'an export never carries an outside file'
	assert [answer.code() for answer in answers] == [grpc.StatusCode.NOT_FOUND] * 4
	assert list(left) == []
	assert secret.read_bytes() == SECRET, 'deleting a record never deletes a file outside the outputs folder'


async def test_a_zip_bomb_costs_at_most_a_cap(start_fake: StartDaemon, exported: dict[str, bytes]) -> None:
	"""Members far larger than their caps (built streaming, so the test itself stays small)."""
	daemon = await start_fake()
	record = records(exported)[0]
	image = _part(record, 'images')
	one = with_records(exported, [record])
	bombs = [
		(zip_with_filler(one, f'images/{image["path"]}', b'', b'\0', 256 * 1024**2, b''), 'is larger than 96 MiB'),
		(zip_with_filler(exported, 'generations.jsonl', b'', b' ', 8 * 1024**2, b'\n'), 'longer than 1 MiB'),
		(zip_with_filler(exported, 'styles.json', b'[', b' ', 40 * 1024**2, b']'), 'larger than 32 MiB'),
		(zip_with_filler(exported, 'styles.json', b'', b'[', 1024**2, b']' * 1024**2), 'styles.json is damaged'),
	]
	old = {name: data for name, data in exported.items() if name != 'generations.jsonl'}
	bombs.append(
		(zip_with_filler(old, 'generations.json', b'[', b' ', 72 * 1024**2, b']'), 'larger than 64 MiB'),
	)
	assert all(len(data) < 4 * 1024**2 for data, _ in bombs), 'each bomb is a small upload'
	before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
	for data, words in bombs:
		await _refused(daemon, data, words)
	grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
	assert grown < 300 * 1024**2, f'peak memory grew by {grown / 2**20:.0f} MiB'


async def test_image_members_must_be_the_images_their_records_state(
	start_fake: StartDaemon, exported: dict[str, bytes]
) -> None:
	daemon = await start_fake()
	image = _part(records(exported)[0], 'images')
	member = f'images/{image["path"]}'
	await _refused(daemon, rezip({**exported, member: b'not an image at all'}), 'is not an image it may hold')
	wrong_size = _mutated(exported, {'width': 128}, 'images')
	await _refused(daemon, wrong_size, 'but its record says 128x64')
	bomb = bytes.fromhex(
		'89504e470d0a1a0a0000000d4948445200030d4000030d400806000000'  # a PNG header claiming 200000x200000
	)
	await _refused(daemon, rezip({**exported, member: bomb + b'\0' * 64}), 'is not an image it may hold')


@pytest.mark.parametrize(
	('where', 'change', 'words'),
	[
		('spec', {'width': -64}, 'generations[0].spec.width'),
		('spec', {'guidance_scale': 'NaN'}, 'guidance_scale must be finite'),
		('spec', {'seeds': [2**64]}, 'every seed is between 0 and 2^63-1'),
		('spec', {'steps': 100000}, 'steps must be between 1 and 150'),
		('spec', {'prompt': 'a\u0000b'}, 'must not contain NUL'),
		('', {'id': '../../escape'}, 'is not a job id'),
		('', {'note': 'n' * 20000}, 'generations[0].note'),
		('', {'timings': {'total_s': float('inf')}}, 'finite seconds'),
		('images', {'index': 7}, 'one image per index'),
	],
)
async def test_history_records_pass_the_generate_rules(
	start_fake: StartDaemon, exported: dict[str, bytes], where: str, change: dict[str, object], words: str
) -> None:
	daemon = await start_fake()
	await _refused(daemon, _mutated(exported, change, where), words)


@pytest.mark.parametrize(
	('document', 'entry', 'words'),
	[
		('models.json', {'name': FAKE_MODEL, 'default_sampler': 'BOGUS'}, "unknown sampler 'BOGUS'"),
		('models.json', {'name': FAKE_MODEL, 'default_steps': 100000}, 'models[0].defaults.steps'),
		('models.json', {'name': FAKE_MODEL, 'default_guidance': 1e30}, 'models[0].defaults.guidance_scale'),
		('loras.json', {'name': 'ink', 'default_weight': 1e30}, 'loras[0].default_weight'),
		('styles.json', {'name': ''}, 'styles[0].name'),
		('styles.json', {'name': 'nul\u0000name'}, 'styles[0].name'),
		('styles.json', {'name': 'x' * 5000}, 'styles[0].name'),
	],
)
async def test_catalog_entries_pass_the_rpc_rules(
	start_fake: StartDaemon, exported: dict[str, bytes], document: str, entry: Json, words: str
) -> None:
	daemon = await start_fake()
	await _refused(daemon, rezip({**exported, document: json.dumps([entry]).encode()}), words)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		model = (await model_grpc.ModelServiceStub(chan).GetModel(model_pb.GetModelRequest(model=FAKE_MODEL))).model
	assert not model.defaults.HasField('steps'), 'the model is as it was'


async def test_a_good_archive_imports_once(start_fake: StartDaemon, exported: dict[str, bytes]) -> None:
	daemon = await start_fake()
	data = rezip(exported)
	first = await _import(daemon, data)
	again = await _import(daemon, data)
	assert isinstance(first, history_pb.ImportArchiveResponse)
	assert isinstance(again, history_pb.ImportArchiveResponse)
	assert (first.generations_created, first.images) == (2, 2)
	assert (again.generations_created, again.generations_skipped, again.images) == (0, 2, 0)
	assert (again.models_updated, again.loras_updated, again.styles_created) == (0, 0, 0), 'nothing changed'


async def test_unsafe_member_names_and_duplicates_are_refused(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	manifest = ('manifest.json', b'{"format": "diffusiond-archive", "version": 2}')
	for name in ('images/../../evil.png', '/abs/evil.png', 'images/.hidden.png', 'images\\..\\evil.png', 'x.txt'):
		answer = await _import(daemon, zip_members([manifest, (name, b'x')]))
		assert isinstance(answer, grpc.aio.AioRpcError)
		assert (answer.code(), 'not a place it may write' in str(answer.details())) == (
			grpc.StatusCode.INVALID_ARGUMENT,
			True,
		)
	buffer_members = [manifest, ('styles.json', b'[]'), ('styles.json', b'[]')]
	with pytest.warns(UserWarning, match='Duplicate name'):
		twice = zip_members(buffer_members)
	answer = await _import(daemon, twice)
	assert isinstance(answer, grpc.aio.AioRpcError)
	assert 'twice' in str(answer.details())
	info, _ = error_details(answer)
	assert info.reason == 'INVALID_ARGUMENT'
