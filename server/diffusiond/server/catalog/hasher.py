"""Background full-file sha256: never on the event loop, never in the way of a scan or a load.

Hashes are stored with the (size, mtime) they were computed for, so a changed file is hashed again
and an unchanged one never is. AutoV2 = the first 10 hex characters (what A1111 and Civitai show).
"""

import asyncio
import contextlib
import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.catalog import Catalog
from diffusiond.server.catalog.files import sha256_file, stamp_of
from diffusiond.server.catalog.schemas import ModelFormat, ModelRecord, ModelStatus

log = logging.getLogger(__name__)


def _needs_hash(record: ModelRecord) -> bool:
	return record.format is not ModelFormat.DIFFUSERS and record.status is not ModelStatus.INVALID and not record.sha256


class Hasher:
	def __init__(self, catalog: Catalog) -> None:
		self._catalog = catalog
		self._task: asyncio.Task[None] | None = None
		self.idle = asyncio.Event()

	def start(self) -> None:
		self._task = asyncio.create_task(self._run(), name='diffusiond-hasher')

	async def stop(self) -> None:
		if self._task is not None:
			self._task.cancel()
			with contextlib.suppress(asyncio.CancelledError):
				await self._task

	async def _run(self) -> None:
		while True:
			self._catalog.changed.clear()
			await self.hash_pending()
			self.idle.set()
			await self._catalog.changed.wait()
			self.idle.clear()

	async def hash_pending(self) -> int:
		"""Hashes every file that lacks a current hash; returns how many it hashed."""
		done = 0
		for record in await self._catalog.repo.all():
			if not _needs_hash(record):
				continue
			try:
				await self._hash(record)
				done += 1
			except (OSError, SQLAlchemyError) as exc:
				log.warning('could not hash %s: %s', record.name, exc)
		return done

	async def _hash(self, record: ModelRecord) -> None:
		models_dir = self._catalog.models_dir
		before = await asyncio.to_thread(stamp_of, models_dir, record.path)
		if before is None:
			return
		begin = time.perf_counter()
		digest = await asyncio.to_thread(sha256_file, models_dir / record.path)
		after = await asyncio.to_thread(stamp_of, models_dir, record.path)
		if after != before:
			return  # written to while hashing: the next refresh sees the change and hashes it again
		await self._catalog.repo.set_hash(record.id, digest, before.size_bytes, before.mtime_ns)
		log.info('hashed %s in %.1fs: %s', record.name, time.perf_counter() - begin, digest[:10])
