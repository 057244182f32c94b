"""The history tables: newest-first keyset pages, records with their images."""

from datetime import UTC, datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from diffusiond.server.errors import FieldViolation, GenerationNotFoundError, InvalidArgumentError
from diffusiond.server.job_records import JobEnd
from diffusiond.server.records import GenerationRecord, HistoryChanges, HistoryFilter, StoredImage, UsageRow
from diffusiond.server.schemas import JobSpec, JobState
from diffusiond.server.store.history_rows import filters_of, record_of, used_loras
from diffusiond.server.store.job_repo import end_in
from diffusiond.server.store.tables import GenerationImageRow, GenerationRow

MIN_PREFIX = 8


class HistoryRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	@staticmethod
	def row_of(record: GenerationRecord) -> GenerationRow:
		return GenerationRow(
			id=record.id,
			created_at=record.created_at,
			finished_at=record.finished_at,
			model_id=record.model_id,
			model_name=record.model_name,
			model_hash=record.model_hash,
			prompt=record.spec.prompt,
			negative_prompt=record.spec.negative_prompt,
			styles=record.spec.styles,
			loras=[
				{'id': lora.id, 'name': lora.name, 'weight': lora.weight, 'hash': lora.short_hash}
				for lora in record.spec.loras
			],
			spec=record.spec.for_history().model_dump_json(),  # the task's parameters, not its source images
			scheduler=record.scheduler,
			device=record.device,
			timings=record.timings,
			favourite=record.favourite,
			tags=record.tags,
			note=record.note,
			state=record.state.value,
			error=record.error,
			node=record.node,
		)

	async def add(self, record: GenerationRecord) -> None:
		row = self.row_of(record)
		async with self._sessions.begin() as session:
			session.add(row)
			await session.flush()  # the record before its images (foreign key)
			session.add_all(self.image_rows(record))

	@staticmethod
	def image_rows(record: GenerationRecord) -> list[GenerationImageRow]:
		return [GenerationImageRow(generation_id=record.id, **image.model_dump()) for image in record.images]

	async def complete(
		self,
		generation_id: str,
		images: list[StoredImage],
		timings: dict[str, float],
		finished_at: datetime,
		state: JobState = JobState.SUCCEEDED,
		end: JobEnd | None = None,
	) -> None:
		"""A running record becomes succeeded (or cancelled: finished early), with its images (all written to disk
		already); `end`: its job's end, in the same transaction."""
		async with self._sessions.begin() as session:
			if end is not None:  # first: a run whose job was taken over touches nothing (JOB_TAKEN_OVER)
				await end_in(session, generation_id, end)
			row = await session.get(GenerationRow, generation_id)
			if row is None:
				raise GenerationNotFoundError(f'generation {generation_id} was deleted while it ran')
			row.state, row.finished_at, row.timings = state.value, finished_at, timings
			session.add_all(GenerationImageRow(generation_id=generation_id, **image.model_dump()) for image in images)

	async def fail_running(self, node: str, error: str) -> int:
		"""Marks the node's records still running as failed (at start-up: their process died); returns how many.
		Records from before nodes existed ('') count as anyone's: the daemon that wrote them has stopped."""
		running = select(GenerationRow).where(
			GenerationRow.state == JobState.RUNNING.value, GenerationRow.node.in_([node, ''])
		)
		async with self._sessions.begin() as session:
			rows = list(await session.scalars(running))
			now = datetime.now(UTC)
			for row in rows:
				row.state, row.error, row.finished_at = JobState.FAILED.value, error, now
			return len(rows)

	async def _present(self, column: InstrumentedAttribute[str], values: list[str]) -> set[str]:
		"""Which of `values` stand in `column` (asked in chunks: SQLite caps query parameters)."""
		found: set[str] = set()
		async with self._sessions() as session:
			for start in range(0, len(values), 500):
				found.update(await session.scalars(select(column).where(column.in_(values[start : start + 500]))))
		return found

	async def recorded_paths(self, paths: list[str]) -> set[str]:
		"""Which of these image paths some record lists."""
		return await self._present(GenerationImageRow.path, paths)

	async def existing(self, generation_ids: list[str]) -> set[str]:
		"""Which of these ids have a record."""
		return await self._present(GenerationRow.id, generation_ids)

	async def attach_images(self, generation_id: str, images: list[StoredImage]) -> set[str]:
		"""Adds finished files to their record (recovery); the record turns succeeded once it lists every image.

		Returns the paths attached: an index the record already lists is left out."""
		async with self._sessions.begin() as session:
			row = await session.get(GenerationRow, generation_id)
			if row is None:
				return set()
			listed = await self._images(session, [generation_id])
			taken = {image.index for image in listed.get(generation_id, [])}
			new = [image for image in images if image.index not in taken]
			session.add_all(GenerationImageRow(generation_id=generation_id, **image.model_dump()) for image in new)
			expected = len(JobSpec.model_validate_json(row.spec).seeds)
			if len(taken) + len(new) >= expected:
				row.state, row.error = JobState.SUCCEEDED.value, ''
			return {image.path for image in new}

	async def page(
		self, filters: HistoryFilter, after: tuple[datetime, str] | None, limit: int
	) -> list[GenerationRecord]:
		"""Newest first; `after` is the (created_at, id) of the last record of the previous page."""
		query = select(GenerationRow).where(*filters_of(filters))
		if after is not None:
			created, last_id = after
			query = query.where(
				or_(
					GenerationRow.created_at < created,
					and_(GenerationRow.created_at == created, GenerationRow.id < last_id),
				)
			)
		query = query.order_by(GenerationRow.created_at.desc(), GenerationRow.id.desc()).limit(limit)
		async with self._sessions() as session:
			rows = list(await session.scalars(query))
			images = await self._images(session, [row.id for row in rows])
			return [record_of(row, images.get(row.id, [])) for row in rows]

	@staticmethod
	async def _images(session: AsyncSession, ids: list[str]) -> dict[str, list[GenerationImageRow]]:
		found: dict[str, list[GenerationImageRow]] = {}
		if ids:
			for image in await session.scalars(
				select(GenerationImageRow).where(GenerationImageRow.generation_id.in_(ids))
			):
				found.setdefault(image.generation_id, []).append(image)
		return found

	async def _find(self, session: AsyncSession, ref: str) -> GenerationRow | None:
		"""By id, else by a unique prefix of at least MIN_PREFIX characters (what a person copies from a list)."""
		row = await session.get(GenerationRow, ref)
		if row is not None or not MIN_PREFIX <= len(ref) < 36 or ref.strip('0123456789abcdef-'):
			return row
		rows = list(await session.scalars(select(GenerationRow).where(GenerationRow.id.startswith(ref)).limit(2)))
		if len(rows) > 1:
			raise InvalidArgumentError(
				[FieldViolation(field='id', description=f'{ref!r} starts several generation ids; give more of it')]
			)
		return rows[0] if rows else None

	async def get(self, generation_id: str) -> GenerationRecord:
		"""A record by its id or a unique prefix of it (8+ characters)."""
		async with self._sessions() as session:
			row = await self._find(session, generation_id)
			if row is None:
				raise GenerationNotFoundError(
					f'no generation {generation_id!r} in the history; list them with ListGenerations',
					metadata={'generation': generation_id},
				)
			images = await self._images(session, [row.id])
			return record_of(row, images.get(row.id, []))

	async def state(self, generation_id: str) -> JobState | None:
		"""The record's state by its exact id; None when there is none."""
		async with self._sessions() as session:
			found = await session.scalar(select(GenerationRow.state).where(GenerationRow.id == generation_id))
			return JobState(found) if found is not None else None

	async def update(self, generation_id: str, changes: HistoryChanges) -> None:
		async with self._sessions.begin() as session:
			row = await session.get(GenerationRow, generation_id)
			if row is None:
				raise GenerationNotFoundError(f'no generation {generation_id!r} in the history')
			for field in ('favourite', 'tags', 'note'):
				value = getattr(changes, field)
				if value is not None:
					setattr(row, field, value)

	async def usage_rows(self) -> list[UsageRow]:
		"""One row per recorded job with its image count (for usage statistics)."""
		counts = (
			select(GenerationImageRow.generation_id, func.count().label('images'))
			.group_by(GenerationImageRow.generation_id)
			.subquery()
		)
		query = select(GenerationRow, counts.c.images).join(counts, counts.c.generation_id == GenerationRow.id)
		async with self._sessions() as session:
			return [
				UsageRow(
					created_at=row.created_at,
					model_id=row.model_id,
					model_name=row.model_name,
					loras=used_loras(row),
					styles=[style for style in row.styles if isinstance(style, str)]
					if isinstance(row.styles, list)
					else [],
					images=int(images),
				)
				for row, images in await session.execute(query)
			]

	async def delete(self, generation_id: str, end: JobEnd | None = None) -> None:
		"""`end`: the job ended without images; its end is written in the same transaction."""
		async with self._sessions.begin() as session:
			if end is not None:  # first, as in complete()
				await end_in(session, generation_id, end)
			await session.execute(delete(GenerationImageRow).where(GenerationImageRow.generation_id == generation_id))
			await session.execute(delete(GenerationRow).where(GenerationRow.id == generation_id))
