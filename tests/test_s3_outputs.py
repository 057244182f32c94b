"""Finished images in an S3-compatible bucket (storage.outputs_url = s3://bucket/prefix), against a real S3 server on
127.0.0.1 (moto's server mode): the store's own calls; a daemon whose images go to the bucket (nothing in its outputs
folder), GetImage and thumbnails from it, deletes that remove the objects, archives exported from one bucket and
imported into another; a bucket that cannot be used stops the start with a clear message; and on a shared queue, any
daemon serves another's image from the bucket, also once that daemon is gone."""

from __future__ import annotations

import asyncio
import errno
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.server.history.s3_outputs import S3Outputs, parse_url
from diffusiond.server.listen import StartupError
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import FAKE_MODEL, make_settings, write_fake_model
from tests.fakes import FakeEngine
from tests.helpers import collect
from tests.s3_server import objects


def test_the_store_writes_reads_and_removes_objects(s3_endpoint: str, s3_bucket: str) -> None:
	store = S3Outputs(f's3://{s3_bucket}/team/a', s3_endpoint)
	store.check()
	store.write('2026-12-07/x-0.png', b'png bytes')
	read, there = store.read('2026-12-07/x-0.png'), store.exists('2026-12-07/x-0.png')
	store.remove(['2026-12-07/x-0.png', '2026-12-07/never-written.png'])
	with pytest.raises(FileNotFoundError):
		store.read('2026-12-07/x-0.png')
	with pytest.raises(FileNotFoundError):
		store.read('../elsewhere.png')
	assert (read, there) == (b'png bytes', True)
	assert not store.exists('2026-12-07/x-0.png')
	assert objects(s3_endpoint, s3_bucket) == {}
	assert store.where == f's3://{s3_bucket}/team/a/'


def test_outputs_urls_and_unusable_buckets(s3_endpoint: str, s3_bucket: str) -> None:
	assert parse_url('s3://bucket') == ('bucket', '')
	assert parse_url('s3://bucket/a/b/') == ('bucket', 'a/b/')
	with pytest.raises(ValueError, match='s3://bucket'):
		parse_url('https://bucket/a')
	with pytest.raises(OSError, match='open bucket missing-bucket') as missing:
		S3Outputs('s3://missing-bucket', s3_endpoint).check()
	with pytest.raises(OSError, match='could not store') as down:
		S3Outputs(f's3://{s3_bucket}', 'http://127.0.0.1:9').write('a.png', b'x')  # nothing listens there
	assert missing.value.errno == errno.ENOENT
	assert down.value.errno == errno.EIO


def _settings_of(root: Path, url: str, endpoint: str, more: dict[str, object] | None = None) -> dict[str, object]:
	return {'outputs_url': url, 's3_endpoint_url': endpoint, 'data_dir': str(root)} | (more or {})


async def _daemon(root: Path, storage: dict[str, object], cluster: bool = False) -> Daemon:
	if not (root / 'models' / FAKE_MODEL).exists():
		write_fake_model(root / 'models' / FAKE_MODEL)
	overrides: dict[str, dict[str, object]] = {'storage': storage}
	if cluster:
		overrides['cluster'] = {'heartbeat_s': 0.05, 'lease_s': 2.0, 'poll_s': 0.1}
	daemon = Daemon(make_settings(root, overrides), FakeEngine(step_s=0.001))
	await daemon.start()
	await asyncio.wait_for(daemon.ready.wait(), 30)
	return daemon


async def _generate(daemon: Daemon, prompt: str) -> tuple[str, list[bytes]]:
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
		events = await collect(
			gen_grpc.GenerationServiceStub(channel).Generate(
				gen_pb.GenerateRequest(prompt=prompt, steps=2, num_images=2)
			)
		)
	assert events[-1].completed.storage == gen_pb.STORAGE_STATE_STORED, events[-1].completed.storage_error
	return events[0].job_id, [event.image.data for event in events if event.HasField('image')]


def _history(channel: grpc.aio.Channel) -> history_grpc.HistoryServiceAsyncStub:
	return history_grpc.HistoryServiceStub(channel)


async def test_a_daemon_keeps_its_images_in_the_bucket(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
	url = f's3://{s3_bucket}/studio'
	first = await _daemon(tmp_path / 'one', _settings_of(tmp_path / 'one', url, s3_endpoint))
	try:
		job_id, images = await _generate(first, 'into the bucket')
		async with grpc.aio.insecure_channel(f'127.0.0.1:{first.port}') as channel:
			history = _history(channel)
			record = (await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation
			image = await history.GetImage(history_pb.GetImageRequest(generation_id=job_id, index=1))
			small = await history.GetImage(history_pb.GetImageRequest(generation_id=job_id, index=0, thumbnail_size=16))
			archive = b''.join(
				[
					chunk.data
					async for chunk in history.ExportArchive(history_pb.ExportArchiveRequest(include_images=True))
				]
			)
			stored = objects(s3_endpoint, s3_bucket)
			await history.DeleteGeneration(history_pb.DeleteGenerationRequest(id=job_id))
			after_delete = objects(s3_endpoint, s3_bucket)
	finally:
		await first.shutdown(0.0)
	keys = [f'studio/{image.path}' for image in record.images]
	assert {key: stored[key] for key in keys} == dict(zip(keys, images, strict=True)), 'the streamed bytes, stored'
	assert sorted(stored) == sorted(keys)
	assert not [path for path in (tmp_path / 'one' / 'outputs').rglob('*') if path.is_file()], 'no local copies'
	assert image.data == images[1]
	assert (small.mime_type, Image.open(io.BytesIO(small.data)).size) == ('image/jpeg', (16, 16))
	with zipfile.ZipFile(io.BytesIO(archive)) as members:
		assert members.read(f'images/{record.images[0].path}') == images[0], 'exported from the bucket'
	assert after_delete == {}, 'DeleteGeneration removes its objects'

	second = await _daemon(tmp_path / 'two', _settings_of(tmp_path / 'two', f's3://{s3_bucket}/other', s3_endpoint))
	try:
		async with grpc.aio.insecure_channel(f'127.0.0.1:{second.port}') as channel:

			async def chunks() -> AsyncIterator[history_pb.ArchiveChunk]:
				for start in range(0, len(archive), 100_000):
					yield history_pb.ArchiveChunk(data=archive[start : start + 100_000])

			counts = await _history(channel).ImportArchive(chunks())
			again = await _history(channel).GetImage(history_pb.GetImageRequest(generation_id=job_id, index=0))
	finally:
		await second.shutdown(0.0)
	assert (counts.generations_created, counts.images) == (1, 2)
	assert again.data == images[0]
	assert sorted(objects(s3_endpoint, s3_bucket)) == sorted(f'other/{image.path}' for image in record.images)


async def test_a_bucket_that_cannot_be_used_stops_the_start(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
	with pytest.raises(StartupError, match='the outputs store s3://no-such-bucket/ cannot be used'):
		await _daemon(tmp_path, _settings_of(tmp_path, 's3://no-such-bucket', s3_endpoint))
	fixed = await _daemon(
		tmp_path, _settings_of(tmp_path, f's3://{s3_bucket}', s3_endpoint)
	)  # lock, port, db given back
	await fixed.shutdown(0.0)
	assert fixed.ready.is_set()


async def test_any_daemon_serves_another_daemons_image_from_the_bucket(
	tmp_path: Path, s3_endpoint: str, s3_bucket: str, postgres_url: str
) -> None:
	url = f's3://{s3_bucket}/shared'
	daemons: dict[str, Daemon] = {}
	for node in ('node-a', 'node-b'):
		storage = _settings_of(tmp_path / node, url, s3_endpoint, {'database_url': postgres_url, 'node_id': node})
		daemons[node] = await _daemon(tmp_path / node, storage, cluster=True)
	try:
		job_id, images = await _generate(daemons['node-b'], 'made on either')
		async with grpc.aio.insecure_channel(f'127.0.0.1:{daemons["node-a"].port}') as channel:
			record = (await _history(channel).GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation
		maker = daemons.pop(record.node)  # either may have run it (an idle node claims queued jobs)
		await maker.shutdown(0.0)
		other = next(iter(daemons.values()))
		async with grpc.aio.insecure_channel(f'127.0.0.1:{other.port}') as channel:
			image = await _history(channel).GetImage(history_pb.GetImageRequest(generation_id=job_id, index=1))
	finally:
		for daemon in daemons.values():
			await daemon.shutdown(0.0)
	assert record.node in ('node-a', 'node-b')
	assert image.data == images[1], 'read from the bucket while the node that made it is down (no UNAVAILABLE)'
