"""The pipeline manager: the asyncio-facing owner of the device, its queue and its worker thread."""

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import TypeVar

import psutil
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from diffusiond.server.catalog import Catalog, ModelInfo
from diffusiond.server.catalog.loras import LoraCatalog
from diffusiond.server.catalog.schemas import DEMO_MODEL_NAME, ModelStatus
from diffusiond.server.cluster.cluster import Cluster
from diffusiond.server.errors import (
	DiffusiondError,
	JobCancelledError,
	JobNotFoundError,
	ModelLoadError,
	ModelNotFoundError,
	ShuttingDownError,
)
from diffusiond.server.events import JobEvent
from diffusiond.server.history.outputs import FolderOutputs, Outputs
from diffusiond.server.job_records import StoredJob
from diffusiond.server.jobs.assets import JobAssets
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.directory import JobDirectory
from diffusiond.server.jobs.engine_api import CachedModel, DeviceStats, Engine
from diffusiond.server.jobs.estimate import Estimator, check_deadline
from diffusiond.server.jobs.intake import Intake
from diffusiond.server.jobs.job import Job
from diffusiond.server.jobs.journal import Journal
from diffusiond.server.jobs.memory import check_fits
from diffusiond.server.jobs.queue import JobQueue
from diffusiond.server.jobs.recorder import Recorder
from diffusiond.server.jobs.resume import Resumer, ResumeReport, rebuild
from diffusiond.server.jobs.upscale_intake import upscale_spec
from diffusiond.server.jobs.upscale_job import UpscaleJob
from diffusiond.server.jobs.work import Work
from diffusiond.server.jobs.worker import Worker
from diffusiond.server.node_records import NodeStatus
from diffusiond.server.prompting.report import PromptCheck
from diffusiond.server.schemas import GenerateParams, JobSpec
from diffusiond.server.settings import Settings
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.server.store.job_repo import JobRepository
from diffusiond.server.styles.book import StyleBook
from diffusiond.server.tasks.upscale import UpscaleRequest

log = logging.getLogger(__name__)
T = TypeVar('T')


class ManagerStatus(BaseModel):
	device: DeviceStats
	cached: list[CachedModel]
	default_model: str
	queue_depth: int
	queue_capacity: int
	busy: bool


class PipelineManager:
	def __init__(
		self,
		settings: Settings,
		engine: Engine,
		catalog: Catalog,
		loras: LoraCatalog,
		assets: JobAssets,
		styles: StyleBook,
		history: HistoryRepository | None = None,
		jobs: JobRepository | None = None,
		outputs: Outputs | None = None,
	) -> None:
		self._settings = settings
		self._outputs = outputs or FolderOutputs(settings.storage.outputs_dir)  # where finished images go
		self._history = history
		self._jobs = jobs  # the queue in the store (journal.py); None = in memory only
		self._engine = engine
		self.catalog = catalog
		self.loras = loras
		self.assets = assets
		self.styles = styles
		self.node = ''  # this daemon's node id, from start()
		self._estimator = Estimator()
		self.queue = JobQueue(settings.limits.max_queue, self._estimator, settings.device.batch_max_images)
		self.queue.fits = engine.fits  # a dynamic batch is split where one call would not fit the device
		self.directory = JobDirectory(self.queue, jobs, settings.queue.recent_finished)  # services find jobs here
		self._worker: Worker | None = None  # made once the event loop runs (its recorder reports to the loop)
		self._recorder: Recorder | None = None
		self.journal: Journal | None = None
		self.cluster: Cluster | None = None  # the shared queue, when this node is part of one (share())
		self._loop: asyncio.AbstractEventLoop | None = None
		self._default_prepared = asyncio.Event()
		previewers = settings.storage.previewers_dir
		self._intake = Intake(catalog, loras, assets, styles, settings.limits, self._default_prepared, previewers)
		self.default_model = ''

	async def start(self, node: str = '') -> None:
		"""`node`: this daemon's node id (node.py), written into every record."""
		self._loop = asyncio.get_running_loop()
		self.node = self.directory.node = node
		if self._jobs is not None:
			self.journal = Journal(self._jobs, self._loop, node, self._settings.queue.resume)
			self.queue.on_drop = self.journal.dropped
		self._recorder = Recorder(self._history, self._outputs, self._loop, node, self.journal)
		png_level = self._settings.device.png_compress_level
		self._worker = Worker(self.queue, self._engine, self._estimator, self._recorder, png_level, self.journal)
		self._worker.start()

	async def share(self, cluster: Cluster, epoch: Callable[[], int]) -> None:
		"""Joins the shared queue of the daemons on this database (after start(), before any job is accepted)."""
		if self.journal is None:
			return
		cluster.attach(self.journal, self.node, epoch)
		self.cluster = self.directory.cluster = cluster
		await cluster.listen()

	async def rebuild(self, stored: StoredJob) -> Job:
		"""The job of another node's store row, to run here (cluster/stealer.py)."""
		if self._loop is None:
			raise ShuttingDownError('the pipeline manager is not running')
		return await rebuild(self._intake, stored, self._loop)

	async def resume(self) -> ResumeReport:
		"""Start-up, once the default model is settled: the node's unfinished jobs run again or end (resume.py)."""
		if self._jobs is None or self._loop is None:
			return ResumeReport()
		resumer = Resumer(self._jobs, self._history, self._intake, self.queue, self._loop)
		return await resumer.run(self.node, self._settings.queue.resume, shared=self.cluster is not None)

	async def call(self, task: Callable[[], T]) -> T:
		"""Runs `task` on the worker thread (before the next job) and returns its result."""
		future: concurrent.futures.Future[T] = concurrent.futures.Future()

		def run() -> None:
			try:
				future.set_result(task())
			except BaseException as exc:
				future.set_exception(exc)

		self.queue.put_control(run)
		return await asyncio.wrap_future(future)

	async def prepare_default(self) -> ModelInfo | None:
		"""Scans the models folder, builds the demo model if there is none (and it is enabled), and settles on
		the default: the first candidate that loads (a model that fails is skipped and remembered)."""
		models = self._settings.models
		try:
			await self.catalog.refresh()
			if models.demo_model and not await self.catalog.candidates():
				await self.call(partial(self._engine.build_demo, self.catalog.models_dir / DEMO_MODEL_NAME))
				await self.catalog.refresh()
			for record in await self.catalog.candidates():
				try:
					info = await self.catalog.loadable(record.id)
					if models.load_default_at_start:
						await self.call(partial(self._engine.load, info))
				except DiffusiondError as error:
					log.warning('model %s cannot be the default: %s', record.name, error.message)
					self.catalog.mark_unloadable(record.id, error.message)
					continue
				except Exception as exc:  # a model file no loader anticipated must not cost the daemon its default
					log.exception('loading model %s failed; trying the next candidate', record.name)
					self.catalog.mark_unloadable(record.id, f'model {record.name!r} failed to load: {exc}')
					continue
				self.catalog.default_id, self.default_model = record.id, record.name
				return info
			return None
		finally:
			self._default_prepared.set()

	async def load(self, ref: str) -> ModelInfo:
		"""Loads the model `ref` names (warm-up), on the worker between jobs."""
		info = await self.catalog.loadable(ref)
		await self.call(lambda: self._engine.load(info))
		await self.catalog.mark_used([info.id])
		return info

	async def set_default(self, ref: str) -> ModelInfo:
		"""A1111's `POST /options {sd_model_checkpoint}`: loads `ref` and makes it the default of requests that name
		no model, until the daemon restarts (the setting models.default_model is what start-up reads)."""
		info = await self.load(ref)
		self.catalog.default_id, self.default_model = info.id, info.name
		return info

	async def unload(self, model_id: str) -> bool:
		"""Drops the model from the cache and frees its memory; False if it was not loaded."""
		return await self.call(lambda: self._engine.unload(model_id))

	async def submit(self, params: GenerateParams, deadline_s: float | None = None) -> Work:
		"""Validates `params`, resolves the model and queues the job (or raises at once). On a shared queue, a job
		for a model only other nodes have is queued for them (cluster/forward.py).

		`deadline_s`: the seconds the caller waits; a job expected to take longer is refused up front.
		"""
		if self._loop is None:
			raise ShuttingDownError('the pipeline manager is not running')
		try:
			spec, model = await self._intake.spec(params)
		except ModelNotFoundError as missing:
			if self.cluster is None or self.journal is None or not params.model:
				raise
			await self.cluster.forwarder.check_served(params.model, missing, self.node)
			self.queue.check_room()
			work = await self.cluster.forwarder.forward(
				params, deadline_s, self.journal.next_seq(), self.node, self._loop
			)
			log.info('job %s queued for the nodes that have model %s', work.id, params.model)
			return work
		await self._check_memory(spec, model)
		job = Job(spec, model, EventChannel(self._loop), params.priority)
		job.keep_running = params.keep_running
		if deadline_s is not None:
			check_deadline(self._estimator, job, self.queue.ahead(), deadline_s)
		await self._mark_used(job)
		if self.journal is not None:
			self.queue.check_room()  # a full queue refuses before anything is written
			self.queue.reserve(job.id)  # this node's own: no claimer takes its row while it is on its way here
			try:
				await self.journal.accept(job, params, deadline_s)
			except BaseException:
				self.queue.release(job.id)
				raise
		try:
			self.queue.put(job)  # the last step that can refuse: a refused job leaves nothing queued behind
		except DiffusiondError:
			self.queue.release(job.id)
			if self.journal is not None:
				await self.journal.repo.remove(job.id)  # refused after its write: as if never accepted
			raise
		log.info(
			'job %s queued: model=%s steps=%d size=%dx%d loras=%s',
			job.id,
			model.name,
			job.spec.steps,
			job.spec.width,
			job.spec.height,
			','.join(f'{lora.name}:{lora.weight:g}' for lora in job.spec.loras) or '-',
		)
		return job

	async def _check_memory(self, spec: JobSpec, model: ModelInfo) -> None:
		"""A job that cannot fit even with every memory saver is refused before it is queued (jobs/memory.py)."""
		stats = await asyncio.to_thread(self._engine.stats)
		device = self._settings.device.memory_budget_bytes or stats.memory_total_bytes
		budget = device or psutil.virtual_memory().total
		check_fits(spec, model.base, 4 if stats.dtype == 'float32' else 2, budget)

	async def submit_upscale(self, request: UpscaleRequest) -> UpscaleJob:
		"""Validates an UpscaleImage request, resolves its upscaler and queues it (or raises at once)."""
		if self._loop is None:
			raise ShuttingDownError('the pipeline manager is not running')
		spec = await upscale_spec(request, self.assets.upscalers, self._settings.limits)
		job = UpscaleJob(spec, EventChannel(self._loop), request.priority)
		self.queue.put(job)
		if spec.file is not None:
			with contextlib.suppress(DiffusiondError, SQLAlchemyError):  # bookkeeping only
				await self.assets.upscalers.mark_used([spec.file.id])
		log.info(
			'upscale %s queued: %s %dx%d -> %dx%d',
			job.id,
			spec.upscaler,
			spec.source_width,
			spec.source_height,
			spec.width,
			spec.height,
		)
		return job

	async def _mark_used(self, job: Job) -> None:
		"""Last-used times are bookkeeping: a database that cannot take them (a full disk) does not stop the job."""
		try:
			await self.catalog.mark_used([job.model.id])
			await self.loras.mark_used([lora.id for lora in job.spec.loras])
			await self.assets.embeddings.mark_used([embedding.id for embedding in job.spec.embeddings])
			await self.assets.vaes.mark_used([job.spec.vae.id] if job.spec.vae is not None else [])
		except (DiffusiondError, SQLAlchemyError) as exc:
			log.warning('job %s: last-used times not recorded: %s', job.id, exc)

	async def check_prompt(self, model: str, prompt: str, negative: str, styles: list[str]) -> PromptCheck:
		"""TokenizePrompt: how Generate would read the prompts, with nothing queued."""
		return await self._intake.check(model, prompt, negative, styles)

	async def follow(self, job: Work, keep_running: bool = False) -> AsyncGenerator[JobEvent, None]:
		"""The events of `job` for the caller that submitted it (gRPC Generate or UpscaleImage, an HTTP request). A
		caller that goes away (disconnect, deadline, a failed write) cancels the job, unless `keep_running`: then it
		finishes for history and WatchJob and nothing buffers for that caller."""
		try:
			async for event in job.channel.events():
				yield event
		except ModelLoadError as error:
			if isinstance(job, Job):
				self.failed_to_load(job, error)
			raise
		finally:
			if keep_running:
				job.channel.unsubscribe(job.channel.primary)
			else:
				self.abandon(job, 'the caller went away (disconnect or deadline)')

	def failed_to_load(self, job: Job, error: ModelLoadError) -> None:
		"""A job's model would not load: it is no default candidate until its file changes or the daemon restarts."""
		self.catalog.mark_unloadable(job.model.id, error.message)

	def abandon(self, job: Work, why: str) -> None:
		"""Cancels `job` because its caller went away; nothing happens if it already finished."""
		if job.finished:
			return
		try:
			self.queue.cancel(job.id, JobCancelledError(f'job {job.id} was cancelled: {why}'))
		except JobNotFoundError:
			if self.cluster is not None:  # another node claimed it
				self.cluster.abandon(job, why)
		except DiffusiondError:
			pass  # it finished between the check and the cancel

	def loaded(self) -> list[str]:
		"""The names of the models in memory, the one on the device first (loop-only, no waiting)."""
		return [entry.info.name for entry in sorted(self._engine.cached(), key=lambda entry: not entry.active)]

	def warm(self) -> dict[str, set[str]]:
		"""The models in memory → the names of the LoRAs attached to each (a shared queue's claims prefer these)."""
		return {entry.info.name: set(entry.loras) for entry in self._engine.cached()}

	async def node_status(self) -> NodeStatus:
		"""What this daemon's heartbeat reports."""
		models = [record.name for record in await self.catalog.repo.all() if record.status is ModelStatus.READY]
		return NodeStatus(queue_depth=self.queue.depth, busy=self.queue.busy, loaded=self.loaded(), models=models)

	def cached(self) -> list[CachedModel]:
		"""The engine's memory cache (a snapshot: the one engine call that does not go through the worker)."""
		return self._engine.cached()

	async def status(self) -> ManagerStatus:
		device = await asyncio.to_thread(self._engine.stats)
		default = await self.catalog.default()  # what a plain Generate would use now
		return ManagerStatus(
			device=device,
			cached=self._engine.cached(),
			default_model=default.name if default is not None else '',
			queue_depth=self.queue.depth,
			queue_capacity=self.queue.capacity,
			busy=self.queue.busy,
		)

	async def drain(self, grace_s: float) -> None:
		"""Shutdown: refuse new jobs, cancel queued ones, give the running one `grace_s`, then stop."""
		running = self.queue.close()
		if running and not await asyncio.to_thread(running[-1].ended.wait, grace_s):  # a batch ends together
			for job in running:
				log.warning('job %s did not finish within the %.1fs grace period; cancelling it', job.id, grace_s)
				job.request_cancel(ShuttingDownError(f'the daemon shut down before job {job.id} finished'))
		self.queue.stop()
		if self._worker is not None:
			await asyncio.to_thread(self._worker.join)
		if self._recorder is not None:
			await self._recorder.idle()  # every finished job recorded, every stream ended
		if self.journal is not None:
			await self.journal.idle()
		await asyncio.to_thread(self._engine.unload_all)
