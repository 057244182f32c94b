"""Records jobs and writes their images under the outputs folder. Called on the worker thread only.

A job is recorded as running when it starts. Its files are written to a hidden temporary name and renamed
into place, and only then does the record list them (and turn succeeded), so history never lists an image
that is not fully on disk; a job that ends without images is removed again.
"""

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.schemas import AUTOV2_LENGTH
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.events import ImageEvent
from diffusiond.server.history.files import remove_files, write_file
from diffusiond.server.history.layout import image_path
from diffusiond.server.history.schemas import GenerationRecord, StoredImage
from diffusiond.server.jobs.job import Job
from diffusiond.server.schemas import JobState
from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)
RECORD_TIMEOUT_S = 30.0


class Storage(BaseModel):
	"""Whether a finished job's images are in the outputs folder and the history, and if not, why."""

	stored: bool
	error: str = ''


class HistoryWriter(Protocol):
	def started(self, job: Job, scheduler: str, device: str) -> None: ...
	def save(self, job: Job, images: list[ImageEvent], timings: dict[str, float]) -> Storage: ...
	def discard(self, job: Job) -> None: ...


def _describe(exc: Exception) -> str:
	if isinstance(exc, DiffusiondError):
		return exc.message
	if isinstance(exc, TimeoutError):
		return f'the database did not answer within {RECORD_TIMEOUT_S:g}s'
	return str(exc).splitlines()[0][:300]


class History:
	def __init__(self, repo: HistoryRepository, outputs_dir: Path, loop: asyncio.AbstractEventLoop) -> None:
		self.repo = repo
		self.outputs_dir = outputs_dir
		self._loop = loop

	def _wait(self, job: Job, action: Coroutine[None, None, None], what: str) -> str:
		"""Runs a store call on the event loop and waits; '' when it worked, else why it failed (logged)."""
		try:
			asyncio.run_coroutine_threadsafe(action, self._loop).result(RECORD_TIMEOUT_S)
			return ''
		except (SQLAlchemyError, TimeoutError, DiffusiondError) as exc:
			log.error('job %s: could not %s in the history: %s', job.id, what, _describe(exc))
			return _describe(exc)

	def started(self, job: Job, scheduler: str, device: str) -> None:
		record = GenerationRecord(
			id=job.id,
			created_at=job.created_at,
			finished_at=job.created_at,
			model_id=job.model.id,
			model_name=job.model.name,
			model_hash=(job.model.sha256 or '')[:AUTOV2_LENGTH],
			spec=job.spec,
			scheduler=scheduler,
			device=device,
			timings={},
			favourite=False,
			tags=[],
			note='',
			images=[],
			state=JobState.RUNNING,
		)
		error = self._wait(job, self.repo.add(record), 'record the start')
		job.recorded = not error
		job.storage_error = f'the history could not record the job: {error}' if error else ''

	def save(self, job: Job, images: list[ImageEvent], timings: dict[str, float]) -> Storage:
		"""Files first (temp + rename), then the record lists them and turns succeeded. All or nothing: a file
		that cannot be written takes the job's other files and its record with it, and the caller is told."""
		if not job.recorded:
			return Storage(stored=False, error=job.storage_error)
		stored: list[StoredImage] = []
		try:
			for image in images:
				relative = image_path(job.created_at, job.id, image.index, job.spec.output_format)
				write_file(self.outputs_dir / relative, image.data)
				stored.append(
					StoredImage(
						index=image.index,
						seed=image.seed,
						path=relative,
						mime_type=image.mime_type,
						width=image.width,
						height=image.height,
						size_bytes=len(image.data),
					)
				)
		except OSError as exc:
			where = exc.filename or self.outputs_dir
			log.error('job %s: its images could not be written to %s: %s', job.id, where, exc.strerror)
			remove_files([self.outputs_dir / image.path for image in stored])
			self.discard(job)
			job.recorded = False
			return Storage(stored=False, error=f'the images could not be written: {exc.strerror}: {where}')
		error = self._wait(job, self.repo.complete(job.id, stored, timings, datetime.now(UTC)), 'record the images')
		if error:
			return Storage(
				stored=False,
				error=f'the images are in {self.outputs_dir} but the history could not list them ({error}); '
				'the next start of the daemon records them',
			)
		return Storage(stored=True)

	def discard(self, job: Job) -> None:
		"""A job that ends without images leaves no record."""
		if job.recorded:
			self._wait(job, self.repo.delete(job.id), 'remove the record')
