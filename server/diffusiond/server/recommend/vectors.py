"""Each LoRA's text embedding, made in the background and stored with the catalog (store/vector_repo.py): at
start-up for LoRAs that have none, or whose text or embedding model changed since, and again whenever the catalog
changes. The embedding runs in a thread, never on the event loop; a recommendation only reads the vectors held here."""

import asyncio
import contextlib
import hashlib
import logging

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.lora_schemas import LoraRecord
from diffusiond.server.catalog.loras import LoraCatalog
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.recommend.embedder import Embedder, Vectors
from diffusiond.server.store.vector_repo import StoredVector, VectorRepository

log = logging.getLogger(__name__)
_CHUNK = 64  # LoRAs embedded and stored at a time
_STOP_S = 10.0  # a shutdown waits this long for the current step
_TOP_TRAINING_TAGS = 10


def lora_text(record: LoraRecord) -> str:
	"""What a LoRA's embedding is made of: its names, trigger words, tags, top training tags and note."""
	parts = [record.display_name, record.name.replace('/', ' ').replace('_', ' '), record.probe.output_name]
	parts += [*record.trigger_words, *record.tags, *record.probe.suggested_triggers[:_TOP_TRAINING_TAGS], record.note]
	unique: list[str] = []
	for part in parts:
		if part and part.lower() not in (seen.lower() for seen in unique):
			unique.append(part)
	return ', '.join(unique)


def _digest(text: str) -> str:
	return hashlib.sha256(text.encode()).hexdigest()


class VectorKeeper:
	def __init__(self, loras: LoraCatalog, repo: VectorRepository, embedder: Embedder | None) -> None:
		self._loras = loras
		self._repo = repo
		self.embedder = embedder
		self._vectors: dict[str, Vectors] = {}
		self._hashes: dict[str, str] = {}  # LoRA id → the digest of the text its vector is of
		self._stacked: tuple[list[str], Vectors] | None = None  # every vector in one matrix, rows in id order
		self.pending = 0  # LoRAs whose vector is missing or out of date
		self._wake = asyncio.Event()
		self._idle = asyncio.Event()
		self._task: asyncio.Task[None] | None = None
		self._stopping = False

	@property
	def version(self) -> str:
		"""The embedding model's version, '' until it is loaded."""
		return self.embedder.version if self.embedder is not None and self.embedder.loaded else ''

	@property
	def ready(self) -> bool:
		"""Whether prompts can be embedded now (the model is loaded once the catalog has a LoRA)."""
		return self.embedder is not None and self.embedder.loaded

	def start(self) -> None:
		if self.embedder is not None:
			self._wake.set()
			self._task = asyncio.get_running_loop().create_task(self._run(), name='diffusiond-lora-vectors')

	def wake(self) -> None:
		self._idle.clear()
		self._wake.set()

	async def settled(self) -> None:
		"""Returns once every catalogued LoRA has its current vector (no embedding model: at once)."""
		if self._task is not None:
			await self._idle.wait()

	async def stop(self) -> None:
		"""Lets the current step finish (a store call cancelled midway would leave its connection behind), then ends;
		an embedding that takes longer than a few seconds is cancelled."""
		if self._task is None:
			return
		self._stopping = True
		self._wake.set()
		done, _ = await asyncio.wait({self._task}, timeout=_STOP_S)
		if not done:
			self._task.cancel()
		with contextlib.suppress(asyncio.CancelledError):
			await asyncio.gather(self._task, return_exceptions=True)  # whatever it ended with, the shutdown goes on
		self._task = None

	async def _run(self) -> None:
		embedder = self.embedder
		if embedder is None:
			return
		try:
			stored = await self._repo.all()
		except SQLAlchemyError as exc:
			log.error('LoRA recommendations: the stored embeddings could not be read (%s); ranking without them', exc)
			self.embedder = None
			self._idle.set()
			return
		for vector in stored:
			if vector.embedder == embedder.version:
				self._vectors[vector.lora_id] = np.frombuffer(vector.data, dtype='<f4')
				self._hashes[vector.lora_id] = vector.text_hash
		while not self._stopping:
			await self._wake.wait()
			self._wake.clear()
			if self._stopping:
				break
			try:
				await self._sync(embedder)
			except (SQLAlchemyError, DiffusiondError, OSError, ValueError, RuntimeError) as exc:
				log.warning('LoRA recommendations: embeddings not updated: %s', exc)
			except Exception:  # a bug must not stop the embeddings for good
				log.exception('LoRA recommendations: updating the embeddings failed')
			if not self._wake.is_set():
				self._idle.set()
		self._idle.set()

	async def _sync(self, embedder: Embedder) -> None:
		records = await self._loras.repo.of_base(None)
		texts = {record.id: lora_text(record) for record in records}
		digests = {lora_id: _digest(text) for lora_id, text in texts.items()}
		todo = [lora_id for lora_id, digest in digests.items() if self._hashes.get(lora_id) != digest]
		self.pending = len(todo)
		if texts and not embedder.loaded:  # prompts are embedded from now on too
			await embedder.load_in_thread()
		for start in range(0, len(todo), _CHUNK):
			if self._stopping:
				return
			chunk = todo[start : start + _CHUNK]
			made: Vectors = await embedder.embed_in_thread([texts[lora_id] for lora_id in chunk])
			rows = [
				StoredVector(lora_id=lora_id, embedder=embedder.version, text_hash=digests[lora_id], data=row.tobytes())
				for lora_id, row in zip(chunk, made.astype('<f4'), strict=True)
			]
			await self._repo.put(rows)
			for lora_id, row in zip(chunk, made, strict=True):
				self._vectors[lora_id], self._hashes[lora_id] = row, digests[lora_id]
			self._stacked = None
			self.pending -= len(chunk)
		gone = set(self._vectors) - set(texts)
		for lora_id in gone:
			self._vectors.pop(lora_id, None)
			self._hashes.pop(lora_id, None)
			self._stacked = None
		if gone:
			await self._repo.keep(set(texts))

	def _matrix(self) -> tuple[list[str], Vectors]:
		if self._stacked is None:
			ids = list(self._vectors)
			matrix = np.stack([self._vectors[lora_id] for lora_id in ids]) if ids else np.zeros((0, 1), np.float32)
			self._stacked = (ids, matrix)
		return self._stacked

	def similarities(self, query: Vectors, lora_ids: list[str]) -> dict[str, float]:
		"""Cosine similarity of `query` to each of `lora_ids` that has a vector (one product with every vector)."""
		ids, matrix = self._matrix()
		if not ids:
			return {}
		every = dict(zip(ids, (matrix @ query).tolist(), strict=True))
		return {lora_id: every[lora_id] for lora_id in lora_ids if lora_id in every}

	def neighbours(self, lora_id: str, others: list[str]) -> dict[str, float]:
		"""Cosine similarity of LoRA `lora_id`'s vector to each of `others` (none when it has no vector)."""
		own = self._vectors.get(lora_id)
		return self.similarities(own, others) if own is not None else {}
