"""History on the event loop: each job's record, its image files, and the end of its stream.

The worker never waits for this. It reports what happened (a job started, finished with images, ended
without) through `loop.call_soon_threadsafe`, in order, and goes on with the next job. Here, per job:
the record is added as running when the job starts; at the end its image files are written to the outputs store
(history/outputs.py: whole or not at all; in a thread, off the loop), the record lists them and turns succeeded,
and only then is `completed` sent, saying whether the images were kept. A job that ends without images
loses its record before its stream reports the end, so a client that sees CANCELLED finds no record.
"""

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog.schemas import AUTOV2_LENGTH
from diffusiond.server.errors import DiffusiondError, JobTakenOverError
from diffusiond.server.events import CompletedEvent, ImageEvent, JobTimings
from diffusiond.server.history.layout import image_path
from diffusiond.server.history.outputs import Outputs
from diffusiond.server.job_records import JobEnd
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.journal import Journal
from diffusiond.server.records import GenerationRecord, StoredImage
from diffusiond.server.schemas import JobState
from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)


class Storage(BaseModel):
	"""Whether a finished job's images are in the outputs store and the history, and if not, why."""

	stored: bool
	error: str = ''


def _describe(exc: Exception) -> str:
	return exc.message if isinstance(exc, DiffusiondError) else str(exc).splitlines()[0][:300]


class Recorder:
	def __init__(
		self,
		repo: HistoryRepository | None,
		outputs: Outputs,
		loop: asyncio.AbstractEventLoop,
		node: str,
		journal: Journal | None = None,
	) -> None:
		self._repo = repo
		self._journal = journal  # the job's end goes into the store with its record (journal.py)
		self._node = node
		self._outputs = outputs
		self._loop = loop
		self._recording: dict[str, asyncio.Task[str]] = {}  # job id → adding its record ('' or why it failed)
		self._pending: set[asyncio.Task[None]] = set()
		self._taken_over: set[str] = set()  # jobs whose end the store refused: another node had taken them over

	# The worker's side: thread-safe, returns at once.

	def started(self, job: Job, scheduler: str, device: str) -> None:
		self._loop.call_soon_threadsafe(self._begin, job, scheduler, device)

	def finished(self, job: Job, images: list[ImageEvent], timings: JobTimings) -> None:
		self._loop.call_soon_threadsafe(self._spawn, self._finish(job, images, timings))

	def ended(self, job: Job, error: DiffusiondError) -> None:
		"""The job ended without images (cancelled or failed)."""
		self._loop.call_soon_threadsafe(self._spawn, self._end(job, error))

	# The loop's side.

	async def idle(self) -> None:
		"""Waits until every reported outcome is recorded and every stream has its end (shutdown)."""
		while self._pending:
			await asyncio.gather(*self._pending)

	def _spawn(self, work: Coroutine[object, object, None]) -> None:
		task = self._loop.create_task(work)
		self._pending.add(task)
		task.add_done_callback(self._pending.discard)

	def _begin(self, job: Job, scheduler: str, device: str) -> None:
		if self._repo is None:
			return
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
			node=self._node,
		)
		self._recording[job.id] = self._loop.create_task(self._store(job, self._repo.add(record), 'record the start'))

	async def _store(self, job: Job, action: Awaitable[None], what: str) -> str:
		"""Runs a store call; '' when it worked, else why it failed (logged: the client still gets its images)."""
		try:
			await action
			return ''
		except JobTakenOverError as exc:  # nothing of this run is kept (store/job_repo.py end_in)
			log.warning('job %s: %s', job.id, exc.message)
			self._taken_over.add(job.id)
			return exc.message
		except (SQLAlchemyError, DiffusiondError) as exc:
			log.error('job %s: could not %s in the history: %s', job.id, what, _describe(exc))
			return _describe(exc)

	async def _started(self, job: Job) -> str | None:
		"""Why the job has no record ('' = it has one); None when it never got as far as starting."""
		recording = self._recording.pop(job.id, None)
		if recording is None:
			return None
		return await recording

	def _job_end(self, job: Job, error: DiffusiondError | None) -> JobEnd | None:
		return self._journal.end_of(job, error) if self._journal is not None else None

	def _end_alone(self, job: Job, error: DiffusiondError | None) -> None:
		"""The job's end without a history record to share its transaction."""
		if self._journal is not None:
			self._journal.ended(job, error)

	async def _end(self, job: Job, error: DiffusiondError) -> None:
		try:
			if await self._started(job) == '' and self._repo is not None:
				await self._store(job, self._repo.delete(job.id, self._job_end(job, error)), 'remove the record')
			else:
				self._end_alone(job, error)
		finally:  # whatever the store did, the stream (and every reader: a relay, a watcher) gets its end
			self._taken_over.discard(job.id)
			job.channel.put_error(error)

	async def _finish(self, job: Job, images: list[ImageEvent], timings: JobTimings) -> None:
		try:
			storage = await self._save(job, images, timings)
		except Exception as exc:  # a bug: logged, and the stream still ends (its images were sent)
			log.exception('job %s: recording its images failed', job.id)
			storage = Storage(stored=False, error=f'the images could not be recorded: {_describe(exc)}')
		job.channel.put(
			CompletedEvent(
				state=job.state,  # cancelled: it finished early with the image as it was (CancelJob finish_early)
				timings=timings,
				stored=storage.stored,
				storage_error=storage.error,
				notices=job.notices,
			)
		)

	async def _save(self, job: Job, images: list[ImageEvent], timings: JobTimings) -> Storage:
		"""Files first (temp + rename), then the record lists them and turns succeeded. All or nothing: a file
		that cannot be written takes the job's other files and its record with it, and the client is told."""
		started = await self._started(job)
		if self._repo is None or started:
			self._end_alone(job, None)
			why = f'the history could not record the job: {started}' if started else 'this daemon keeps no history'
			return Storage(stored=False, error=why)
		stored = [
			StoredImage(
				index=image.index,
				seed=image.seed,
				path=image_path(job.created_at, job.id, image.index, job.spec.output_format),
				mime_type=image.mime_type,
				width=image.width,
				height=image.height,
				size_bytes=len(image.data),
			)
			for image in images
		]
		if not await self._still_ours(job):  # nothing of this run is kept, as when the store fences its end
			return Storage(stored=False, error=self._taken_over_error(job))
		written: list[str] = []
		try:
			for image, entry in zip(images, stored, strict=True):
				await asyncio.to_thread(self._outputs.write, entry.path, image.data)
				written.append(entry.path)
		except OSError as exc:
			where = exc.filename or self._outputs.where
			log.error('job %s: its images could not be written to %s: %s', job.id, where, exc.strerror)
			await self._remove(written)
			await self._store(job, self._repo.delete(job.id, self._job_end(job, None)), 'remove the record')
			return Storage(stored=False, error=f'the images could not be written: {exc.strerror}: {where}')
		error = await self._store(
			job,
			self._repo.complete(
				job.id, stored, timings.model_dump(), datetime.now(UTC), job.state, self._job_end(job, None)
			),
			'record the images',
		)
		if job.id in self._taken_over:  # another node ran it again: its record and files are the job's
			self._taken_over.discard(job.id)
			if not self._outputs.shared:  # a shared store holds the other run's images under the same names
				await self._remove(written)
			return Storage(stored=False, error=error)
		if error:
			self._end_alone(job, None)
			return Storage(
				stored=False,
				error=f'the images are in {self._outputs.where} but the history could not list them ({error}); '
				'the next start of the daemon records them',
			)
		return Storage(stored=True)

	async def _still_ours(self, job: Job) -> bool:
		"""Before writing into a store other nodes share: a run that was taken over must not overwrite the images of
		the run that replaced it (the end's fence in the store comes after the files)."""
		if not self._outputs.shared or self._journal is None or job.claim is None:
			return True
		try:
			return await self._journal.repo.holds(job.id, job.claim)
		except SQLAlchemyError:
			return True  # the store's fence at the end still decides

	def _taken_over_error(self, job: Job) -> str:
		error = JobTakenOverError(
			f'job {job.id} was taken over by another daemon; WatchJob {job.id} follows its new run'
		)
		log.warning('job %s: %s', job.id, error.message)
		return error.message

	async def _remove(self, written: list[str]) -> None:
		try:
			await asyncio.to_thread(self._outputs.remove, written)
		except OSError as exc:
			log.error('images %s stay in %s: %s', ', '.join(written), self._outputs.where, exc.strerror)
