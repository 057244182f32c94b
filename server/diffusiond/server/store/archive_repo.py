"""Everything an archive holds, read in one go and written back in one transaction."""

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.history.archive import ArchiveContents, LoraEntry, ModelEntry, StyleEntry
from diffusiond.server.history.schemas import GenerationRecord
from diffusiond.server.schemas import JobState
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.server.store.tables import GenerationRow, LoraRow, ModelRow, StyleRow


class ImportCounts(BaseModel):
	styles_created: int = 0
	styles_skipped: int = 0
	generations_created: int = 0
	generations_skipped: int = 0
	images: int = 0
	models_updated: int = 0
	loras_updated: int = 0


class ArchiveRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession], history: HistoryRepository) -> None:
		self._sessions = sessions
		self._history = history

	async def snapshot(self) -> ArchiveContents:
		async with self._sessions() as session:
			styles = [
				StyleEntry(
					name=r.name,
					prompt=r.prompt,
					negative_prompt=r.negative_prompt,
					description=r.description,
					tags=list(r.tags),
				)
				for r in await session.scalars(select(StyleRow).order_by(StyleRow.name))
			]
			models = [
				ModelEntry(
					name=r.name,
					sha256=r.sha256,
					display_name=r.display_name,
					tags=list(r.tags),
					default_sampler=r.default_sampler,
					default_steps=r.default_steps,
					default_guidance=r.default_guidance,
				)
				for r in await session.scalars(select(ModelRow).order_by(ModelRow.name))
			]
			loras = [
				LoraEntry(
					name=r.name,
					sha256=r.sha256,
					display_name=r.display_name,
					tags=list(r.tags),
					trigger_words=r.trigger_words,
					default_weight=r.default_weight,
					enabled=r.enabled,
				)
				for r in await session.scalars(select(LoraRow).order_by(LoraRow.name))
			]
			ids = list(await session.scalars(select(GenerationRow.id).order_by(GenerationRow.created_at)))
		generations = [await self._history.get(generation_id) for generation_id in ids]
		return ArchiveContents(styles=styles, models=models, loras=loras, generations=generations)

	async def new_generations(self, records: list[GenerationRecord]) -> set[str]:
		"""The ids of `records` the history does not hold yet."""
		async with self._sessions() as session:
			known = set(
				await session.scalars(select(GenerationRow.id).where(GenerationRow.id.in_([r.id for r in records])))
			)
		return {record.id for record in records} - known

	async def apply(self, contents: ArchiveContents) -> ImportCounts:
		counts = ImportCounts()
		now = datetime.now(UTC)
		async with self._sessions.begin() as session:
			names = {name.lower() for name in await session.scalars(select(StyleRow.name))}
			for style in contents.styles:
				if style.name.lower() in names:
					counts.styles_skipped += 1
					continue
				names.add(style.name.lower())
				session.add(
					StyleRow(
						id=uuid.uuid4().hex[:16],
						name=style.name,
						prompt=style.prompt,
						negative_prompt=style.negative_prompt,
						description=style.description,
						tags=style.tags,
						builtin=False,
						created_at=now,
						updated_at=now,
					)
				)
				counts.styles_created += 1
			await self._generations(session, contents.generations, counts)
			await self._catalog(session, contents, counts)
		return counts

	@staticmethod
	async def _generations(session: AsyncSession, records: list[GenerationRecord], counts: ImportCounts) -> None:
		known = set(
			await session.scalars(select(GenerationRow.id).where(GenerationRow.id.in_([r.id for r in records])))
		)
		for record in records:
			if record.id in known:
				counts.generations_skipped += 1
				continue
			known.add(record.id)
			state = JobState.FAILED if record.state is JobState.RUNNING else record.state
			session.add(HistoryRepository.row_of(record.model_copy(update={'state': state})))
			await session.flush()
			session.add_all(HistoryRepository.image_rows(record))
			counts.generations_created += 1
			counts.images += len(record.images)

	@staticmethod
	async def _catalog(session: AsyncSession, contents: ArchiveContents, counts: ImportCounts) -> None:
		for model in contents.models:
			row = await session.scalar(select(ModelRow).where(func.lower(ModelRow.name) == model.name.lower()))
			if row is not None:
				row.display_name, row.tags = model.display_name, model.tags
				row.default_sampler, row.default_steps = model.default_sampler, model.default_steps
				row.default_guidance = model.default_guidance
				counts.models_updated += 1
		for lora in contents.loras:
			found = await session.scalar(select(LoraRow).where(func.lower(LoraRow.name) == lora.name.lower()))
			if found is not None:
				found.display_name, found.tags, found.trigger_words = lora.display_name, lora.tags, lora.trigger_words
				found.default_weight, found.enabled = lora.default_weight, lora.enabled
				counts.loras_updated += 1
