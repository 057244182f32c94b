"""Background hashing: never on the event loop, never in the way of a scan or a load.

Hashes are stored with the (size, mtime) they were computed for, so a changed file is hashed again and
an unchanged one never is. Sources (the model catalog, the LoRA catalog) say what needs hashing and
store the results; one task hashes for all of them, one file at a time, in a thread.
"""

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.files import FileHashes, lora_hashes, stamp_of
from diffusiond.server.catalog.schemas import FileStamp

log = logging.getLogger(__name__)


class HashTask(BaseModel):
	record_id: str
	name: str
	root: Path
	path: str  # relative to root
	data_offset: int = 0  # where a safetensors file's tensor data starts (for the addnet hash)


class HashSource(Protocol):
	async def pending_hashes(self) -> list[HashTask]: ...
	async def store_hashes(self, task: HashTask, hashes: FileHashes, stamp: FileStamp) -> None: ...


class Hasher:
	def __init__(self, sources: list[HashSource], wake: asyncio.Event) -> None:
		self._sources = sources
		self._wake = wake  # set by a rescan that found new or changed files
		self._task: asyncio.Task[None] | None = None

	def start(self) -> None:
		self._task = asyncio.create_task(self._run(), name='diffusiond-hasher')

	async def stop(self) -> None:
		if self._task is not None:
			self._task.cancel()
			with contextlib.suppress(asyncio.CancelledError):
				await self._task

	async def _run(self) -> None:
		while True:
			self._wake.clear()
			await self.hash_pending()
			await self._wake.wait()

	async def hash_pending(self) -> int:
		"""Hashes every file that lacks a current hash; returns how many it hashed."""
		done = 0
		for source in self._sources:
			for task in await source.pending_hashes():
				try:
					done += await self._hash(source, task)
				except (OSError, SQLAlchemyError) as exc:
					log.warning('could not hash %s: %s', task.name, exc)
		return done

	async def _hash(self, source: HashSource, task: HashTask) -> int:
		before = await asyncio.to_thread(stamp_of, task.root, task.path)
		if before is None:
			return 0
		begin = time.perf_counter()
		hashes = await asyncio.to_thread(lora_hashes, task.root / task.path, task.data_offset)
		after = await asyncio.to_thread(stamp_of, task.root, task.path)
		if after != before:
			return 0  # written to while hashing: the next rescan sees the change and it is hashed again
		await source.store_hashes(task, hashes, before)
		log.info('hashed %s in %.1fs: %s', task.name, time.perf_counter() - begin, hashes.sha256[:10])
		return 1
