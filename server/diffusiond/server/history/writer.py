"""Writes a finished job's images under the outputs folder and records the job. Worker thread only.

Files are written to a hidden temporary name and renamed into place; the record is added once every file
is complete, so history never lists an image that is not fully on disk.
"""

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.schemas import AUTOV2_LENGTH
from diffusiond.server.history.schemas import GenerationRecord, StoredImage
from diffusiond.server.pipeline.job import Job
from diffusiond.server.schemas import ImageEvent, ImageFormat
from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)
SUFFIXES = {ImageFormat.PNG: '.png', ImageFormat.JPEG: '.jpg', ImageFormat.WEBP: '.webp'}
RECORD_TIMEOUT_S = 30.0


class HistoryWriter(Protocol):
	def save(
		self, job: Job, images: list[ImageEvent], scheduler: str, device: str, timings: dict[str, float]
	) -> None: ...


def write_file(path: Path, data: bytes) -> None:
	path.parent.mkdir(parents=True, exist_ok=True)
	scratch = path.with_name(f'.{path.name}.tmp')
	with scratch.open('wb') as file:
		file.write(data)
		file.flush()
		os.fsync(file.fileno())
	os.replace(scratch, path)


class History:
	def __init__(self, repo: HistoryRepository, outputs_dir: Path, loop: asyncio.AbstractEventLoop) -> None:
		self.repo = repo
		self.outputs_dir = outputs_dir
		self._loop = loop

	def save(self, job: Job, images: list[ImageEvent], scheduler: str, device: str, timings: dict[str, float]) -> None:
		"""Files first, then the record; a failure is logged (the client has its images either way)."""
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
				timings=timings,
				favourite=False,
				tags=[],
				note='',
				images=stored,
			)
			asyncio.run_coroutine_threadsafe(self.repo.add(record), self._loop).result(RECORD_TIMEOUT_S)
		except (OSError, SQLAlchemyError, TimeoutError) as exc:
			log.error('job %s could not be recorded in the history: %s', job.id, exc)
