"""The styles table: rows in, pydantic StyleRecords out."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.errors import AlreadyExistsError, StyleNotFoundError
from diffusiond.server.store.lenient import RowReader
from diffusiond.server.store.like import LIKE_ESCAPE, contains
from diffusiond.server.store.tables import StyleRow
from diffusiond.server.styles.schemas import StyleFields, StyleRecord

FIELDS = ('name', 'prompt', 'negative_prompt', 'description', 'tags')


def style_record(row: StyleRow) -> StyleRecord:
	read = RowReader(f'style {row.id}')
	record = StyleRecord(
		id=row.id,
		name=read.text('name', row.name, row.id),
		prompt=read.text('prompt', row.prompt),
		negative_prompt=read.text('negative_prompt', row.negative_prompt),
		description=read.text('description', row.description),
		tags=read.words('tags', row.tags),
		builtin=bool(row.builtin),
		created_at=read.time('created_at', row.created_at),
		updated_at=read.time('updated_at', row.updated_at),
		last_used_at=read.optional_time('last_used_at', row.last_used_at),
	)
	read.done()
	return record


def _taken(name: str) -> AlreadyExistsError:
	return AlreadyExistsError(f'a style named {name!r} exists already; pick another name', metadata={'style': name})


class StyleRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	async def all(self, query: str = '') -> list[StyleRecord]:
		select_styles = select(StyleRow).order_by(func.lower(StyleRow.name))
		if query:
			pattern = contains(query.lower())
			text = (StyleRow.name, StyleRow.prompt, StyleRow.negative_prompt, StyleRow.description)
			select_styles = select_styles.where(
				or_(*(func.lower(column).like(pattern, escape=LIKE_ESCAPE) for column in text))
			)
		async with self._sessions() as session:
			return [style_record(row) for row in await session.scalars(select_styles)]

	async def find(self, ref: str) -> StyleRecord | None:
		"""By id, else by name (exact, then case-insensitive)."""
		async with self._sessions() as session:
			row = await session.get(StyleRow, ref) or await session.scalar(select(StyleRow).where(StyleRow.name == ref))
			row = row or await session.scalar(select(StyleRow).where(func.lower(StyleRow.name) == ref.lower()))
			return style_record(row) if row is not None else None

	async def create(self, fields: StyleFields) -> StyleRecord:
		now = datetime.now(UTC)
		row = StyleRow(id=uuid.uuid4().hex[:16], builtin=False, created_at=now, updated_at=now, tags=[])
		row.prompt = row.negative_prompt = row.description = ''
		for field in FIELDS:
			value = getattr(fields, field)
			if value is not None:
				setattr(row, field, value)
		try:
			async with self._sessions.begin() as session:
				session.add(row)
		except IntegrityError as exc:
			raise _taken(row.name) from exc
		return style_record(row)

	async def update(self, style_id: str, fields: StyleFields) -> StyleRecord:
		try:
			async with self._sessions.begin() as session:
				row = await session.get(StyleRow, style_id)
				if row is None:
					raise StyleNotFoundError(f'style {style_id} was removed meanwhile', metadata={'style': style_id})
				for field in FIELDS:
					value = getattr(fields, field)
					if value is not None:
						setattr(row, field, value)
				row.updated_at = datetime.now(UTC)
		except IntegrityError as exc:
			raise _taken(fields.name or '') from exc
		return style_record(row)

	async def delete(self, style_id: str) -> None:
		async with self._sessions.begin() as session:
			row = await session.get(StyleRow, style_id)
			if row is not None:
				await session.delete(row)

	async def upsert_many(self, created: list[StyleFields], updated: list[tuple[str, StyleFields]]) -> None:
		"""An import in one transaction: all of it or none of it."""
		now = datetime.now(UTC)
		async with self._sessions.begin() as session:
			for fields in created:
				row = StyleRow(
					id=uuid.uuid4().hex[:16], builtin=False, created_at=now, updated_at=now, tags=[], description=''
				)
				row.name, row.prompt, row.negative_prompt = (
					fields.name or '',
					fields.prompt or '',
					fields.negative_prompt or '',
				)
				session.add(row)
			for style_id, fields in updated:
				values = {'prompt': fields.prompt, 'negative_prompt': fields.negative_prompt, 'updated_at': now}
				await session.execute(update(StyleRow).where(StyleRow.id == style_id).values(**values))

	async def touch(self, style_ids: list[str]) -> None:
		if style_ids:
			async with self._sessions.begin() as session:
				await session.execute(
					update(StyleRow).where(StyleRow.id.in_(style_ids)).values(last_used_at=datetime.now(UTC))
				)
