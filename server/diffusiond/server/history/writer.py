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

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.schemas import AUTOV2_LENGTH
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.events import ImageEvent
from diffusiond.server.history.files import write_file
from diffusiond.server.history.schemas import GenerationRecord, StoredImage
from diffusiond.server.pipeline.job import Job
from diffusiond.server.schemas import ImageFormat, JobState
from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)
SUFFIXES = {ImageFormat.PNG: '.png', ImageFormat.JPEG: '.jpg', ImageFormat.WEBP: '.webp'}
RECORD_TIMEOUT_S = 30.0


class HistoryWriter(Protocol):
	def started(self, job: Job, scheduler: str, device: str) -> None: ...
	def save(self, job: Job, images: list[ImageEvent], timings: dict[str, float]) -> None: ...
	def discard(self, job: Job) -> None: ...


class History:
	def __init__(self, repo: HistoryRepository, outputs_dir: Path, loop: asyncio.AbstractEventLoop) -> None:
		self.repo = repo
		self.outputs_dir = outputs_dir
		self._loop = loop

	def _wait(self, job: Job, action: Coroutine[None, None, None], what: str) -> bool:
		"""Runs a store call on the event loop and waits; a failure is logged (the client has its images)."""
		try:
			asyncio.run_coroutine_threadsafe(action, self._loop).result(RECORD_TIMEOUT_S)
			return True
		except (SQLAlchemyError, TimeoutError, DiffusiondError) as exc:
			log.error('job %s: could not %s in the history: %s', job.id, what, exc)
			return False

	def started(self, job: Job, scheduler: str, device: str) -> None:
		record = GenerationRecord(
			id=job.id,
			created_at=job.created_at,
			finished_at=datetime.now(UTC),
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
		job.recorded = self._wait(job, self.repo.add(record), 'record the start')

	def save(self, job: Job, images: list[ImageEvent], timings: dict[str, float]) -> None:
		"""Files first (temp + rename), then the record lists them and turns succeeded."""
		if not job.recorded:
			return
		folder = job.created_at.strftime('%Y-%m-%d')
		stored = []
		try:
			for image in images:
				relative = f'{folder}/{job.id}-{image.index}{SUFFIXES[job.spec.output_format]}'
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
			log.error('job %s: its images could not be written to %s: %s', job.id, self.outputs_dir, exc)
			self.discard(job)
			return
		self._wait(job, self.repo.complete(job.id, stored, timings, datetime.now(UTC)), 'record the images')

	def discard(self, job: Job) -> None:
		"""A job that ends without images leaves no record."""
		if job.recorded:
			self._wait(job, self.repo.delete(job.id), 'remove the record')
