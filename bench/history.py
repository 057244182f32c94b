"""History benchmark: ListGenerations page by page over 10,000 records (repository + conversion, no transport)."""

import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.daemon import percentile
from diffusiond.server.records import HistoryFilter
from diffusiond.server.samplers import Sampler
from diffusiond.server.schemas import ImageFormat, JobSpec
from diffusiond.server.services.history_convert import decode_cursor, encode_cursor, generation_to_pb
from diffusiond.server.store import Database, default_url
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.server.store.tables import GenerationImageRow, GenerationRow
from diffusiond.server.tasks import Txt2Img


async def _fill(database: Database, count: int) -> None:
	spec = JobSpec(
		model='sd15',
		prompt='a fox in the snow',
		negative_prompt='blurry',
		width=512,
		height=512,
		steps=20,
		guidance_scale=7.0,
		sampler=Sampler.EULER_A,
		seeds=[1],
		output_format=ImageFormat.PNG,
		quality=90,
		task=Txt2Img(),
	).model_dump_json()
	start = datetime(2026, 1, 1, tzinfo=UTC)
	ids = [str(uuid.uuid4()) for _ in range(count)]
	async with database.sessions.begin() as session:
		for index, job_id in enumerate(ids):
			when = start + timedelta(seconds=index)
			session.add(
				GenerationRow(
					id=job_id,
					created_at=when,
					finished_at=when,
					model_id='m',
					model_name='sd15',
					model_hash='',
					prompt=f'a fox in the snow {index}',
					negative_prompt='blurry',
					styles=[],
					loras=[],
					spec=spec,
					scheduler='EulerAncestralDiscreteScheduler',
					device='cpu',
					timings={},
					favourite=index % 10 == 0,
					tags=[],
					note='',
				)
			)
		await session.flush()  # records before their images (foreign key)
		for job_id in ids:
			session.add(
				GenerationImageRow(
					generation_id=job_id,
					index=0,
					seed=1,
					path=f'x/{job_id}-0.png',
					mime_type='image/png',
					width=512,
					height=512,
					size_bytes=1,
				)
			)


async def _measure(root: Path, count: int, page: int) -> tuple[list[float], list[float]]:
	database = Database(default_url(root))
	await database.upgrade()
	await _fill(database, count)
	repo = HistoryRepository(database.sessions)
	pages: list[float] = []
	filtered: list[float] = []
	for filters, times in ((HistoryFilter(), pages), (HistoryFilter(favourite_only=True, text='snow'), filtered)):
		token = ''
		while True:
			begin = time.perf_counter()
			records = await repo.page(filters, decode_cursor(token), page + 1)
			messages = [generation_to_pb(record) for record in records[:page]]
			token = encode_cursor(records[page - 1]) if len(records) > page else ''
			times.append(time.perf_counter() - begin)
			if not token or not messages:
				break
	await database.close()
	return pages, filtered


def run_history(count: int = 10_000, page: int = 50) -> list[tuple[str, str]]:
	with tempfile.TemporaryDirectory() as scratch:
		pages, filtered = asyncio.run(_measure(Path(scratch), count, page))
	return [
		(f'ListGenerations, {count} records, pages of {page}: p50', f'{statistics.median(pages) * 1000:.2f} ms'),
		('ListGenerations p99 (goal < 20 ms)', f'{percentile(pages, 0.99) * 1000:.2f} ms'),
		('ListGenerations, favourites + text filter: p99', f'{percentile(filtered, 0.99) * 1000:.2f} ms'),
	]
