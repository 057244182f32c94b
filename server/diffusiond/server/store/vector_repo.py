"""The LoRAs' text embeddings (recommend/): read all at once, written as they are made."""

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.store.tables import LoraVectorRow


class StoredVector(BaseModel):
	lora_id: str
	embedder: str
	text_hash: str
	data: bytes  # float32, little-endian


class VectorRepository:
	def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
		self._sessions = sessions

	async def all(self) -> list[StoredVector]:
		async with self._sessions() as session:
			return [
				StoredVector(
					lora_id=row.lora_id,
					embedder=row.embedder,
					text_hash=row.text_hash,
					data=row.vector,
				)
				for row in await session.scalars(select(LoraVectorRow))
			]

	async def put(self, vectors: list[StoredVector]) -> None:
		ids = [vector.lora_id for vector in vectors]
		async with self._sessions.begin() as session:
			query = select(LoraVectorRow).where(LoraVectorRow.lora_id.in_(ids))
			rows = {row.lora_id: row for row in await session.scalars(query)}  # one read for the chunk
			for vector in vectors:
				row = rows.get(vector.lora_id)
				if row is None:
					session.add(
						LoraVectorRow(
							lora_id=vector.lora_id,
							embedder=vector.embedder,
							text_hash=vector.text_hash,
							vector=vector.data,
						)
					)
				else:
					row.embedder, row.text_hash, row.vector = vector.embedder, vector.text_hash, vector.data

	async def keep(self, lora_ids: set[str]) -> None:
		"""Forgets the vectors of LoRAs no longer catalogued."""
		async with self._sessions.begin() as session:
			stored = set(await session.scalars(select(LoraVectorRow.lora_id)))
			gone = stored - lora_ids
			if gone:
				await session.execute(delete(LoraVectorRow).where(LoraVectorRow.lora_id.in_(gone)))
