"""One catalog of files in a folder, as the store remembers them: scan, probe, find, update, hide or delete, mark
used, hash. The model catalog (catalog.py) and the LoRA catalog (loras.py) say what their files are and how one
is probed; everything else is here, once."""

import asyncio
import logging
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from diffusiond.server.catalog.files import MIN_HASH_PREFIX, FileHashes, inside, is_hash_prefix
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.rescan import Stamped, diff_stamps, new_names
from diffusiond.server.catalog.schemas import FileStamp, RefreshResult
from diffusiond.server.errors import DiffusiondError, FieldViolation, InvalidArgumentError
from diffusiond.server.store.file_repo import ChangesT, FileRepository, NewEntry, ProbeT, Reprobe, RowT

log = logging.getLogger(__name__)
RecordT = TypeVar('RecordT', bound=Stamped)


class Noun(BaseModel):
	"""How messages name one catalog's entries."""

	field: str  # the request field that names one: 'model', 'lora'
	one: str  # 'model', 'LoRA'
	many: str  # 'models', 'LoRAs'


def _remove(target: Path) -> None:
	if target.is_dir() and not target.is_symlink():
		shutil.rmtree(target)
	else:
		target.unlink(missing_ok=True)


class FileCatalog(Generic[RowT, RecordT, ProbeT, ChangesT]):
	def __init__(
		self,
		repo: FileRepository[RowT, RecordT, ProbeT, ChangesT],
		folder: Path,
		noun: Noun,
		changed: asyncio.Event | None = None,
	) -> None:
		self.repo: FileRepository[RowT, RecordT, ProbeT, ChangesT] = repo
		self.folder = folder
		self.noun = noun
		self.changed = changed or asyncio.Event()  # set by a rescan that found new or changed files (wakes the hasher)
		self._lock = asyncio.Lock()
		self._scanned = False  # a first scan completed: lists read before it would miss the folder's files

	def _walk(self) -> list[FileStamp]:
		"""The folder's entries (blocking: run in a thread)."""
		raise NotImplementedError

	def _probe(self, stamp: FileStamp) -> ProbeT:
		"""What one new or changed entry is (blocking: run in a thread; never raises for a hostile file)."""
		raise NotImplementedError

	def _not_found(self, ref: str) -> DiffusiondError:
		raise NotImplementedError

	def _hash_task(self, record: RecordT) -> HashTask | None:
		"""The hashing a record still needs, or None."""
		raise NotImplementedError

	def _refreshed(self, result: RefreshResult) -> None:
		"""What a specialisation forgets about entries a rescan found removed or changed."""

	async def refresh(self, restore: bool = False) -> RefreshResult:
		"""Rescans the folder (walks and probes in threads, never on the loop); probes only new or changed entries
		and writes every change in one transaction. `restore`: list unregistered entries again first."""
		restored = await self.repo.unhide_all() if restore else 0
		async with self._lock:
			begin = time.perf_counter()
			stamps = await asyncio.to_thread(self._walk)
			diff = diff_stamps(stamps, await self.repo.all(include_hidden=True))
			todo = diff.new + [stamp for _, stamp in diff.changed]
			probes = await asyncio.to_thread(lambda: [self._probe(stamp) for stamp in todo])
			found = dict(zip((stamp.path for stamp in todo), probes, strict=True))
			now = datetime.now(UTC)
			added = [
				NewEntry[ProbeT](
					id=uuid.uuid4().hex[:16], name=name, stamp=stamp, probe=found[stamp.path], added_at=now
				)
				for name, stamp in new_names(diff.new, diff.taken)
			]
			reprobed = [
				Reprobe[ProbeT](id=record.id, stamp=stamp, probe=found[stamp.path]) for record, stamp in diff.changed
			]
			await self.repo.apply_scan(added, reprobed, [record.id for record in diff.gone])
			result = RefreshResult(
				stale_ids=[record.id for record in diff.gone] + [record.id for record, _ in diff.changed],
				added=len(added),
				removed=len(diff.gone),
				changed=len(reprobed),
				unchanged=diff.unchanged,
				restored=restored,
				elapsed_s=time.perf_counter() - begin,
			)
		self._scanned = True
		self._refreshed(result)
		if todo:
			self.changed.set()
		if todo or diff.gone:
			log.info('%s folder rescanned: %s', self.noun.many, result.model_dump_json(exclude={'stale_ids'}))
		return result

	async def settled(self) -> None:
		"""Before a list is read: a catalog never scanned yet (a daemon still starting) scans now, or waits for the
		first scan under way, so a list read while the daemon starts is whole, never empty."""
		if not self._scanned:
			await self.refresh()

	async def entries(self) -> list[RecordT]:
		"""Every listed entry, once the folder has been scanned."""
		await self.settled()
		return await self.repo.all()

	async def get(self, ref: str, rescan: bool = True) -> RecordT:
		"""By id, name, or a hash prefix (A1111's short hashes); an unknown name triggers one rescan."""
		noun = self.noun
		if not ref:
			raise InvalidArgumentError(
				[FieldViolation(field=noun.field, description=f'give a {noun.one} id, name or hash')]
			)
		hashlike = is_hash_prefix(ref)
		found = await self.repo.find(ref, hashlike)
		if not found and rescan:  # a file dropped into the folder since the last scan
			await self.refresh()
			found = await self.repo.find(ref, hashlike)
		if len(found) > 1:
			names = ', '.join(sorted(record.name for record in found))
			description = f'{ref!r} matches several {noun.many} ({names}); be more specific'
			raise InvalidArgumentError([FieldViolation(field=noun.field, description=description)])
		if not found:
			raise self._not_found(ref)
		return found[0]

	@staticmethod
	def hash_hint(ref: str) -> str:
		return f' (hash prefixes need at least {MIN_HASH_PREFIX} characters)' if len(ref) < MIN_HASH_PREFIX else ''

	async def by_path(self, rel: str) -> RecordT | None:
		return next((record for record in await self.repo.all() if record.path == rel), None)

	async def update(self, ref: str, changes: ChangesT) -> RecordT:
		record = await self.get(ref)
		await self.repo.update(record.id, changes)
		return await self.get(record.id)

	async def delete(self, record: RecordT, delete_files: bool) -> None:
		"""Forgets `record`, removing its file or folder too, or keeping it: then rescans skip it until the file
		changes or a refresh restores unregistered entries."""
		if delete_files:
			target = await asyncio.to_thread(inside, self.folder, record.path, self.noun.field)
			await asyncio.to_thread(_remove, target)
			await self.repo.remove([record.id])
		else:
			await self.repo.hide(record.id)

	async def mark_used(self, record_ids: list[str]) -> None:
		if record_ids:
			await self.repo.touch(record_ids, datetime.now(UTC))

	async def pending_hashes(self) -> list[HashTask]:
		return [task for task in map(self._hash_task, await self.repo.all()) if task is not None]

	async def store_hashes(self, task: HashTask, hashes: FileHashes, stamp: FileStamp) -> None:
		await self.repo.set_hashes(task.record_id, hashes, stamp)
