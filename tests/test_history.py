"""HistoryService on the real daemon: records, images on disk, filters, paging, regenerate, delete."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.server.history.usage import usage_stats
from diffusiond.server.records import UsageRow
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.conftest import StartDaemon, stubs
from tests.helpers import collect, next_of, pixels, rpc_error

BOTH_STORES = True  # tests/conftest.py: each test whose daemons use `store_url` runs on SQLite and PostgreSQL


@pytest.fixture
def history(channel: grpc.aio.Channel) -> history_grpc.HistoryServiceAsyncStub:
	return history_grpc.HistoryServiceStub(channel)


async def _generate(gen: gen_grpc.GenerationServiceAsyncStub, prompt: str, **fields: int) -> list[gen_pb.GenerateEvent]:
	return await collect(
		gen.Generate(
			gen_pb.GenerateRequest(prompt=prompt, steps=2, seed=fields.get('seed', 4), num_images=fields.get('n', 1))
		)
	)


def _stamp(when: datetime) -> timestamp_pb2.Timestamp:
	stamp = timestamp_pb2.Timestamp()
	stamp.FromDatetime(when)
	return stamp


async def test_jobs_are_recorded_with_their_images(
	gen: gen_grpc.GenerationServiceAsyncStub, history: history_grpc.HistoryServiceAsyncStub, daemon: Daemon
) -> None:
	events = await _generate(gen, 'recorded fox', n=2, seed=21)
	streamed = [event.image for event in events if event.HasField('image')]
	listed = (await history.ListGenerations(history_pb.ListGenerationsRequest(query='RECORDED fox'))).generations
	assert [generation.id for generation in listed] == [events[0].job_id]
	record = listed[0]
	assert (record.prompt, list(record.seeds), record.steps, len(record.images)) == ('recorded fox', [21, 22], 2, 2)
	assert record.model_name == 'tiny-sd'
	assert record.device.startswith('cpu')
	for image in record.images:
		assert (daemon.settings.storage.outputs_dir / image.path).is_file()
		got = await history.GetImage(history_pb.GetImageRequest(generation_id=record.id, index=image.index))
		assert got.data == streamed[image.index].data
	thumb = await history.GetImage(history_pb.GetImageRequest(generation_id=record.id, index=1, thumbnail_size=32))
	assert thumb.mime_type == 'image/jpeg'
	assert max(Image.open(io.BytesIO(thumb.data)).size) <= 32
	for request in (
		history_pb.GetImageRequest(generation_id=record.id, index=5),
		history_pb.GetImageRequest(generation_id='nope', index=0),
	):
		assert (await rpc_error(history.GetImage(request))).code() == grpc.StatusCode.NOT_FOUND
	bad = history_pb.GetImageRequest(generation_id=record.id, index=0, thumbnail_size=4)
	assert (await rpc_error(history.GetImage(bad))).code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_regenerate_gives_the_same_pixels(
	gen: gen_grpc.GenerationServiceAsyncStub, history: history_grpc.HistoryServiceAsyncStub
) -> None:
	original = await _generate(gen, 'regenerated fox', seed=77)
	again = [event async for event in history.Regenerate(history_pb.RegenerateRequest(id=original[0].job_id))]
	first = next(event.image for event in original if event.HasField('image'))
	second = next(event.image for event in again if event.HasField('image'))
	assert second.seed == 77
	assert np.array_equal(pixels(first.data), pixels(second.data))
	assert again[0].job_id != original[0].job_id


async def test_filters_paging_update_and_delete(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, gen = stubs(daemon)
	async with chan:
		await _filters_paging_update_and_delete(gen, history_grpc.HistoryServiceStub(chan), daemon)


async def _filters_paging_update_and_delete(
	gen: gen_grpc.GenerationServiceAsyncStub, history: history_grpc.HistoryServiceAsyncStub, daemon: Daemon
) -> None:
	ids = [(await _generate(gen, f'paged heron {index}'))[0].job_id for index in range(3)]
	styled = await collect(gen.Generate(gen_pb.GenerateRequest(prompt='paged heron', steps=1, styles=['Watercolor'])))
	seen: list[str] = []
	token = ''
	while True:
		page = await history.ListGenerations(
			history_pb.ListGenerationsRequest(query='paged heron', page_size=1, page_token=token)
		)
		seen += [generation.id for generation in page.generations]
		token = page.next_page_token
		if not token:
			break
	assert seen == [styled[0].job_id, *reversed(ids)], 'newest first, each once'
	by_style = await history.ListGenerations(history_pb.ListGenerationsRequest(style='watercolor'))
	assert [generation.id for generation in by_style.generations] == [styled[0].job_id]
	future = history_pb.ListGenerationsRequest(
		query='paged heron', start_time=_stamp(datetime.now(UTC) + timedelta(hours=1))
	)
	assert not (await history.ListGenerations(future)).generations
	favourite = history_pb.UpdateGenerationRequest(
		generation=history_pb.Generation(id=ids[0], favourite=True, tags=['keep'], note='nice'),
	)
	updated = (await history.UpdateGeneration(favourite)).generation
	assert (updated.favourite, list(updated.tags), updated.note) == (True, ['keep'], 'nice')
	favourites = await history.ListGenerations(history_pb.ListGenerationsRequest(favourites_only=True))
	assert [generation.id for generation in favourites.generations] == [ids[0]]
	wrong = history_pb.UpdateGenerationRequest(
		generation=history_pb.Generation(id=ids[0]), update_mask=field_mask_pb2.FieldMask(paths=['prompt'])
	)
	assert (await rpc_error(history.UpdateGeneration(wrong))).code() == grpc.StatusCode.INVALID_ARGUMENT
	record = (await history.GetGeneration(history_pb.GetGenerationRequest(id=ids[1]))).generation
	await history.DeleteGeneration(history_pb.DeleteGenerationRequest(id=ids[1]))
	assert not (daemon.settings.storage.outputs_dir / record.images[0].path).exists()
	assert (
		await rpc_error(history.GetGeneration(history_pb.GetGenerationRequest(id=ids[1])))
	).code() == grpc.StatusCode.NOT_FOUND
	bad_token = history_pb.ListGenerationsRequest(page_token='garbage!')
	assert (await rpc_error(history.ListGenerations(bad_token))).code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_usage_stats_count_models_loras_styles_and_days(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, gen = stubs(daemon)
	async with chan:
		await collect(gen.Generate(gen_pb.GenerateRequest(prompt='a', steps=1, num_images=2, styles=['Anime'])))
		await collect(gen.Generate(gen_pb.GenerateRequest(prompt='b', steps=1, styles=['Anime', 'Watercolor'])))
		stats = await history_grpc.HistoryServiceStub(chan).GetUsageStats(history_pb.GetUsageStatsRequest())
	assert (stats.total_jobs, stats.total_images) == (2, 3)
	assert [(usage.name, usage.jobs, usage.images) for usage in stats.models] == [('fake-model', 2, 3)]
	assert [(usage.name, usage.jobs) for usage in stats.styles] == [('Anime', 2), ('Watercolor', 1)]
	assert stats.styles[0].HasField('last_used_time')
	assert [(day.day, day.images) for day in stats.images_per_day] == [(datetime.now(UTC).strftime('%Y-%m-%d'), 3)]
	assert list(stats.loras) == []


def test_usage_stats_rank_loras_by_use() -> None:
	day = datetime(2026, 3, 1, 12, tzinfo=UTC)
	rows = [
		UsageRow(
			created_at=day, model_id='m', model_name='sd', loras=[('l1', 'ink'), ('l2', 'fox')], styles=[], images=1
		),
		UsageRow(
			created_at=day + timedelta(days=1),
			model_id='m',
			model_name='sd',
			loras=[('l2', 'fox')],
			styles=[],
			images=2,
		),
	]
	stats = usage_stats(rows)
	assert [(usage.id, usage.jobs, usage.images) for usage in stats.loras] == [('l2', 2, 3), ('l1', 1, 1)]
	assert stats.loras[0].last_used == day + timedelta(days=1)
	assert stats.images_per_day == [('2026-03-01', 1), ('2026-03-02', 2)]


async def test_a_running_record_has_no_finish_time(
	gen: gen_grpc.GenerationServiceAsyncStub, history: history_grpc.HistoryServiceAsyncStub
) -> None:
	call = gen.Generate(gen_pb.GenerateRequest(prompt='still running', steps=40, seed=3))
	job_id = (await next_of(call, 'progress')).job_id
	running = (await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation
	events = [event async for event in call]
	done = (await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation
	assert running.state == gen_pb.JOB_STATE_RUNNING
	assert not running.HasField('finish_time')
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert done.HasField('finish_time')
	assert done.finish_time.ToDatetime() >= done.create_time.ToDatetime()


async def test_a_unique_id_prefix_names_a_record(start_fake: StartDaemon) -> None:
	daemon = await start_fake()
	chan, gen = stubs(daemon)
	async with chan:
		job_id = (await collect(gen.Generate(gen_pb.GenerateRequest(prompt='prefixed', steps=1))))[0].job_id
		template = await daemon.history.get(job_id)
		for last in ('1', '2'):
			twin = f'abcdef01-0000-4000-8000-00000000000{last}'
			await daemon.history.add(template.model_copy(update={'id': twin, 'images': []}))
		history = history_grpc.HistoryServiceStub(chan)
		found = await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id[:8]))
		short = await rpc_error(history.GetGeneration(history_pb.GetGenerationRequest(id=job_id[:7])))
		twins = await rpc_error(history.GetGeneration(history_pb.GetGenerationRequest(id='abcdef01')))
		exact = await history.GetGeneration(history_pb.GetGenerationRequest(id='abcdef01-0000-4000-8000-000000000002'))
	assert found.generation.id == job_id
	assert short.code() == grpc.StatusCode.NOT_FOUND
	assert twins.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert 'several' in str(twins.details())
	assert exact.generation.id.endswith('2')
