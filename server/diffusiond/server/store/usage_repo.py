"""What LoRA recommendations read of the history: each recorded generation's prompt and LoRAs with their weights,
and a stamp that changes when the history does (so the index built from it is rebuilt only then)."""

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.schemas import JobState
from diffusiond.server.store.tables import GenerationRow

_DONE = JobState.SUCCEEDED.value


class PastGeneration(BaseModel):
	prompt: str
	loras: list[tuple[str, float]]  # LoRA id, weight


def _loras(value: object) -> list[tuple[str, float]]:
	"""(id, weight) of a record's LoRAs; a damaged list or entry reads as none."""
	if not isinstance(value, list):
		return []
	found: list[tuple[str, float]] = []
	for lora in value:
		if isinstance(lora, dict) and isinstance(lora.get('id'), str) and isinstance(lora.get('weight'), int | float):
			found.append((lora['id'], float(lora['weight'])))
	return found


class UsageRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	async def stamp(self) -> tuple[int, str]:
		"""The count of finished generations and the newest one's id and time (one aggregate query)."""
		query = select(func.count(), func.max(GenerationRow.finished_at)).where(GenerationRow.state == _DONE)
		async with self._sessions() as session:
			count, newest = (await session.execute(query)).one()
		return int(count), str(newest)

	async def generations(self) -> list[PastGeneration]:
		query = select(GenerationRow.prompt, GenerationRow.loras).where(GenerationRow.state == _DONE)
		async with self._sessions() as session:
			return [
				PastGeneration(prompt=prompt, loras=loras)
				for prompt, value in await session.execute(query)
				if (loras := _loras(value))
			]
