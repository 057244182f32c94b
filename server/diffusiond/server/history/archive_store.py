"""Archives against the store: the catalog documents and history pages out, an import in one transaction."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.history.archive_format import CatalogContents, LoraEntry, ModelEntry, StyleEntry
from diffusiond.server.history.archive_rules import CatalogChanges
from diffusiond.server.records import GenerationRecord, HistoryFilter
from diffusiond.server.schemas import JobState
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.server.store.lora_repo import apply_lora_changes
from diffusiond.server.store.lora_rows import lora_of
from diffusiond.server.store.model_repo import apply_model_changes
from diffusiond.server.store.rows import record_of
from diffusiond.server.store.style_repo import style_record
from diffusiond.server.store.tables import LoraRow, ModelRow, StyleRow

Batches = Callable[[], Awaitable[list[GenerationRecord]]]


class ImportCounts(BaseModel):
	styles_created: int = 0
	styles_skipped: int = 0
	generations_created: int = 0
	generations_skipped: int = 0
	images: int = 0
	models_updated: int = 0
	loras_updated: int = 0


class ArchiveRepository:
	def __init__(
		self,
		sessions: async_sessionmaker[AsyncSession],
		history: HistoryRepository,
		catalog: async_sessionmaker[AsyncSession] | None = None,
	) -> None:
		self._sessions = sessions
		self._catalog_sessions = catalog or sessions  # a node's own catalog on a shared queue (app.py)
		self.history = history

	async def catalog(self) -> CatalogContents:
		"""The styles and the user's model and LoRA metadata, read through the lenient row readers."""
		async with self._sessions() as session:
			styles = [style_record(row) for row in await session.scalars(select(StyleRow).order_by(StyleRow.name))]
		async with self._catalog_sessions() as session:
			models = [record_of(row) for row in await session.scalars(select(ModelRow).order_by(ModelRow.name))]
			loras = [lora_of(row) for row in await session.scalars(select(LoraRow).order_by(LoraRow.name))]
		return CatalogContents(
			styles=[
				StyleEntry(
					name=style.name,
					prompt=style.prompt,
					negative_prompt=style.negative_prompt,
					description=style.description,
					tags=style.tags,
				)
				for style in styles
			],
			models=[
				ModelEntry(
					name=model.name,
					sha256=model.sha256,
					display_name=model.display_name,
					tags=model.tags,
					default_sampler=model.defaults.sampler.name if model.defaults.sampler else None,
					default_steps=model.defaults.steps,
					default_guidance=model.defaults.guidance_scale,
					default_clip_skip=model.defaults.clip_skip,
					default_schedule=model.defaults.schedule.name if model.defaults.schedule else None,
				)
				for model in models
			],
			loras=[
				LoraEntry(
					name=lora.name,
					sha256=lora.sha256,
					display_name=lora.display_name,
					tags=lora.tags,
					trigger_words=lora.trigger_words if lora.custom_triggers else None,
					default_weight=lora.default_weight,
					enabled=lora.enabled,
					note=lora.note,
				)
				for lora in loras
			],
		)

	async def generation_pages(self, size: int = 500) -> AsyncIterator[list[GenerationRecord]]:
		"""Every history record, newest first, a page at a time."""
		after = None
		while page := await self.history.page(HistoryFilter(), after, size):
			yield page
			after = (page[-1].created_at, page[-1].id)

	async def apply(self, changes: CatalogChanges, batches: Batches, new_ids: set[str]) -> ImportCounts:
		"""Styles, catalog metadata and the new records (read batch by batch) in one transaction (the catalog's in a
		second one after it, where this node keeps its catalog apart)."""
		counts = ImportCounts()
		async with self._sessions.begin() as session:
			await self._styles(session, changes, counts)
			if self._catalog_sessions is self._sessions:
				await self._catalog(session, changes, counts)
			while batch := await batches():
				for record in batch:
					if record.id not in new_ids:
						counts.generations_skipped += 1
						continue
					state = JobState.FAILED if record.state is JobState.RUNNING else record.state
					session.add(HistoryRepository.row_of(record.model_copy(update={'state': state})))
					await session.flush()  # the record before its images (foreign key)
					session.add_all(HistoryRepository.image_rows(record))
					counts.generations_created += 1
					counts.images += len(record.images)
				await session.flush()
		if self._catalog_sessions is not self._sessions:
			async with self._catalog_sessions.begin() as session:
				await self._catalog(session, changes, counts)
		return counts

	@staticmethod
	async def _styles(session: AsyncSession, changes: CatalogChanges, counts: ImportCounts) -> None:
		now = datetime.now(UTC)
		names = {name.lower() for name in await session.scalars(select(StyleRow.name))}
		for style in changes.styles:
			name = style.name or ''
			if name.lower() in names:
				counts.styles_skipped += 1
				continue
			names.add(name.lower())
			session.add(
				StyleRow(
					id=uuid.uuid4().hex[:16],
					name=name,
					prompt=style.prompt or '',
					negative_prompt=style.negative_prompt or '',
					description=style.description or '',
					tags=style.tags or [],
					builtin=False,
					created_at=now,
					updated_at=now,
				)
			)
			counts.styles_created += 1

	@staticmethod
	async def _catalog(session: AsyncSession, changes: CatalogChanges, counts: ImportCounts) -> None:
		for name, model_changes in changes.models:
			row = await session.scalar(select(ModelRow).where(func.lower(ModelRow.name) == name.lower()))
			if row is not None and apply_model_changes(row, model_changes):
				counts.models_updated += 1
		for name, lora_changes in changes.loras:
			found = await session.scalar(select(LoraRow).where(func.lower(LoraRow.name) == name.lower()))
			if found is not None and apply_lora_changes(found, lora_changes):
				counts.loras_updated += 1
