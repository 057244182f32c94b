"""Builds every object once from one Settings, serves, and shuts down gracefully."""

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Iterable
from functools import partial
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.server.catalog import Catalog, Hasher
from diffusiond.server.catalog.assets import EmbeddingCatalog, VaeCatalog
from diffusiond.server.catalog.controlnets import ControlNetCatalog
from diffusiond.server.catalog.loras import LoraCatalog
from diffusiond.server.catalog.schemas import Probe
from diffusiond.server.catalog.upscalers import UpscalerCatalog
from diffusiond.server.cluster.build import build_cluster, shares_queue
from diffusiond.server.cluster.heartbeat import Heartbeat, advertised
from diffusiond.server.cluster.peer_images import PeerImages
from diffusiond.server.engine.factory import cache_bounds, default_engine
from diffusiond.server.errors import DiffusiondError
from diffusiond.server.gate import Gate
from diffusiond.server.gateway.app import build_app, with_body_cap
from diffusiond.server.gateway.context import Gateway
from diffusiond.server.gateway.server import HttpServer
from diffusiond.server.health import Health
from diffusiond.server.history.archive_store import ArchiveRepository
from diffusiond.server.history.book import History
from diffusiond.server.history.files import write_file
from diffusiond.server.history.outputs import open_outputs
from diffusiond.server.history.recovery import recover
from diffusiond.server.jobs.assets import JobAssets
from diffusiond.server.jobs.engine_api import Engine
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.jobs.resume import ResumeReport
from diffusiond.server.listen import StartupError, bind
from diffusiond.server.lock import DataDirLock
from diffusiond.server.node import resolve_node_id
from diffusiond.server.recommend.recommender import build_recommender
from diffusiond.server.rpc import SERVICE_NAMES, build_server
from diffusiond.server.services.assets import AssetService
from diffusiond.server.services.generation import GenerationService
from diffusiond.server.services.history import HistoryService
from diffusiond.server.services.loras import LoraService
from diffusiond.server.services.models import ModelService
from diffusiond.server.services.styles import StyleService
from diffusiond.server.services.system import SystemService
from diffusiond.server.settings import Settings
from diffusiond.server.store import Database, ModelRepository, default_url
from diffusiond.server.store.asset_repo import (
	ControlNetRepository,
	EmbeddingRepository,
	UpscalerRepository,
	VaeRepository,
)
from diffusiond.server.store.history_repo import HistoryRepository
from diffusiond.server.store.job_repo import JobRepository
from diffusiond.server.store.lora_repo import LoraRepository
from diffusiond.server.store.node_repo import NodeRepository
from diffusiond.server.store.style_repo import StyleRepository
from diffusiond.server.styles.book import StyleBook
from diffusiond.v1 import (
	asset_service_pb2_grpc,
	generation_service_pb2_grpc,
	history_service_pb2_grpc,
	lora_service_pb2_grpc,
	model_service_pb2_grpc,
	style_service_pb2_grpc,
	system_service_pb2_grpc,
)

log = logging.getLogger(__name__)

_HEALTH_NAMES = ('', *SERVICE_NAMES)
_STOP_GRACE_S = 5.0  # for streams to flush their last events after the manager drained


class Daemon:
	"""The running daemon: gRPC server, health, pipeline manager."""

	def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
		self.settings = settings
		storage = settings.storage
		self.lock = DataDirLock(storage.data_dir)
		self.lock.acquire()  # before anything reads or writes the data folder
		self.http: HttpServer | None = None  # bound before gRPC: a taken HTTP port leaves no gRPC server behind
		self.resumed = ResumeReport()  # the unfinished jobs of the last run, once the default model is settled
		try:
			self._build(settings, engine)
		except BaseException:
			if self.http is not None:
				self.http.close()
			self.lock.release()
			raise

	def _build(self, settings: Settings, engine: Engine | None) -> None:
		storage = settings.storage
		files_changed = asyncio.Event()
		url = storage.database_url or default_url(storage.data_dir)
		shared = shares_queue(url, settings.cluster)
		self.database = Database(url)
		local = storage.catalog_url or (default_url(storage.data_dir) if shared else '')
		self.catalog_db = Database(local) if local and local != url else self.database  # the node's own folders'
		catalog = self.catalog_db.sessions
		self.catalog = Catalog(
			ModelRepository(catalog),
			storage.models_dir,
			storage.configs_dir,
			settings.models.default_model,
			settings.models.allow_pickle,
			settings.models.hub_cache_dir,
			files_changed,
			self._probe_pickle,
		)
		self.loras = LoraCatalog(LoraRepository(catalog), storage.loras_dir, files_changed)
		self.cache = cache_bounds(settings)
		self.engine = engine or default_engine(settings, self.cache)
		pickles = settings.models.allow_pickle
		self.assets = JobAssets(
			EmbeddingCatalog(EmbeddingRepository(catalog), storage.embeddings_dir, pickles, self._pickle_shapes),
			VaeCatalog(VaeRepository(catalog), storage.vaes_dir, pickles, self._pickle_shapes),
			ControlNetCatalog(ControlNetRepository(catalog), storage.controlnets_dir),
			UpscalerCatalog(UpscalerRepository(catalog), storage.upscalers_dir, self.engine.describe_upscaler),
		)
		assets = self.assets
		self.hasher = Hasher(
			[self.catalog, self.loras, assets.embeddings, assets.vaes, assets.controlnets, assets.upscalers],
			files_changed,
		)
		self.styles = StyleBook(StyleRepository(self.database.sessions))
		self.history = HistoryRepository(self.database.sessions)
		self.recommender = build_recommender(
			self.loras, self.catalog, catalog, self.database.sessions, settings.loras.text_embeddings
		)
		self.jobs = JobRepository(self.database.sessions, shared)
		self.nodes = NodeRepository(self.database.sessions)
		self.outputs = open_outputs(storage)
		self.manager = PipelineManager(
			settings,
			self.engine,
			self.catalog,
			self.loras,
			self.assets,
			self.styles,
			self.history,
			self.jobs,
			self.outputs,
		)
		self.cluster = (
			build_cluster(url, settings.cluster, self.database.sessions, self.jobs, self.nodes, self.manager)
			if shared
			else None
		)
		self.health = Health()
		self.heartbeat = Heartbeat(self.nodes, self.manager.node_status, settings.cluster)
		self.gate = Gate.from_settings(settings.security)
		archives = ArchiveRepository(self.database.sessions, self.history, catalog)
		self.book = History(self.history, archives, storage, settings.limits, self.outputs)
		if settings.http.port is not None:
			app = build_app(Gateway(settings, self.manager, self.book, self.gate))
			body_cap = with_body_cap(app, settings.server.max_receive_bytes)
			self.http = HttpServer(body_cap, settings.server.host, settings.http.port, settings.security)
		self.server = build_server(
			settings.server,
			self.gate,
			[
				partial(
					generation_service_pb2_grpc.add_GenerationServiceServicer_to_server,
					GenerationService(self.manager, settings.limits),
				),
				partial(
					lora_service_pb2_grpc.add_LoraServiceServicer_to_server,
					LoraService(self.loras, self.recommender, settings.limits),
				),
				partial(asset_service_pb2_grpc.add_AssetServiceServicer_to_server, AssetService(self.assets)),
				partial(style_service_pb2_grpc.add_StyleServiceServicer_to_server, StyleService(self.styles)),
				partial(
					history_service_pb2_grpc.add_HistoryServiceServicer_to_server,
					HistoryService(self.book, self.manager, settings.limits, self._peers(settings)),
				),
				partial(
					model_service_pb2_grpc.add_ModelServiceServicer_to_server,
					ModelService(self.manager, settings, self.heartbeat),
				),
				partial(
					system_service_pb2_grpc.add_SystemServiceServicer_to_server,
					SystemService(self.manager, self.cache, self.heartbeat),
				),
				partial(health_pb2_grpc.add_HealthServicer_to_server, self.health),
			],
		)
		self.endpoints = bind(self.server, settings.server, settings.security)
		self.port = self.endpoints.port
		self.ready = asyncio.Event()
		self._prepare: asyncio.Task[None] | None = None
		self._stopping = False
		self.node = ''  # the node id (node.py), settled by start()

	def _peers(self, settings: Settings) -> PeerImages | None:
		"""How GetImage reaches another daemon's outputs folder (daemons on a shared queue that keep images per node)."""
		if self.cluster is None or self.outputs.shared:
			return None
		security = settings.security
		return PeerImages(self.heartbeat, security.api_token(), security.tls_cert is not None, settings.cluster.peer_ca)

	async def _probe_pickle(self, path: Path) -> Probe:
		"""An allowed pickle is opened on the worker, the one owner of torch (weights_only=True)."""
		return await self.manager.call(partial(self.engine.probe_pickle, path))

	async def _pickle_shapes(self, path: Path) -> dict[str, list[int]]:
		"""An allowed pickle's tensor shapes (an embedding's or a VAE's), read on the worker with weights_only=True."""
		return await self.manager.call(partial(self.engine.pickle_shapes, path))

	async def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
		for name in _HEALTH_NAMES:
			await self.health.set(name, status)

	async def _open_storage(self) -> None:
		"""The folders, the outputs store, the migrations, the node id and recovery: nothing runs yet."""
		storage = self.settings.storage
		for folder in (
			storage.models_dir,
			storage.loras_dir,
			storage.embeddings_dir,
			storage.vaes_dir,
			storage.controlnets_dir,
			storage.upscalers_dir,
		):
			folder.mkdir(parents=True, exist_ok=True)
		try:
			await asyncio.to_thread(self.outputs.check)
		except OSError as exc:
			raise StartupError(f'the outputs store {self.outputs.where} cannot be used: {exc.strerror}') from exc
		await self.database.upgrade()
		if self.catalog_db is not self.database:
			await self.catalog_db.upgrade()
		self.node = await asyncio.to_thread(resolve_node_id, storage.node_id, storage.data_dir)
		self.recovery = await recover(self.history, self.node, self.outputs.folder, storage.scratch_dir)

	async def _close_unstarted(self) -> None:
		"""A start that failed before anything ran gives back what the constructor took: sockets, databases, lock."""
		await self.server.stop(None)
		if self.http is not None:
			self.http.close()
		await self.database.close()
		if self.catalog_db is not self.database:
			await self.catalog_db.close()
		if self.endpoints.socket is not None:
			self.endpoints.socket.unlink(missing_ok=True)
		self.lock.release()

	async def start(self) -> None:
		try:
			await self._open_storage()
		except BaseException:
			await self._close_unstarted()
			raise
		await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
		await self.manager.start(self.node)
		if self.cluster is not None:
			await self.manager.share(self.cluster, lambda: self.heartbeat.epoch)
		await self.server.start()
		self.endpoints.log(self.settings.server.host)
		device = await asyncio.to_thread(self.engine.stats)
		address = advertised(self.settings.server.host, self.port, self.settings.cluster.advertise_address)
		await self.heartbeat.start(self.node, address, f'{device.kind}: {device.name}')
		if self.http is not None:
			await self.http.start()
			scheme = 'https' if self.http.tls else 'http'
			log.info(
				'HTTP gateway on %s://%s:%d (A1111 /sdapi/v1, OpenAI /v1)',
				scheme,
				self.settings.server.host,
				self.http.port,
			)
			if self.settings.http.port_file is not None:
				await asyncio.to_thread(write_file, self.settings.http.port_file, f'{self.http.port}\n'.encode())
		if self.gate.needs_token:
			log.info('an API token is required for every RPC but health')
		if self.settings.server.port_file is not None:
			await asyncio.to_thread(write_file, self.settings.server.port_file, f'{self.port}\n'.encode())
		self._prepare = asyncio.create_task(self._prepare_default())

	async def _prepare_default(self) -> None:
		"""Scans, settles on a default model, then serves: whatever fails here, the daemon serves what is usable."""
		info = None
		try:
			await self.loras.refresh()
			await self.assets.embeddings.refresh()
			await self.assets.vaes.refresh()
			await self.assets.controlnets.refresh()
			await self.assets.upscalers.refresh()
			_freeze_imports()
			info = await self.manager.prepare_default()
			self.resumed = await self.manager.resume()
			self.heartbeat.poke()
			if self.cluster is not None:
				self.cluster.start()
		except DiffusiondError as error:
			log.error('no default model: %s', error.message)
		except Exception:
			log.exception('preparing the default model failed; serving without one')
		finally:
			self.recommender.start()
			if self.settings.models.hash_in_background:
				self.hasher.start()
		if info is None:
			log.warning('no model can serve a plain Generate (none installed, or none loads); it answers NOT_FOUND')
		else:
			log.info(
				'default model %s ready%s', info.name, ' (demo: random weights, produces noise)' if info.demo else ''
			)
		await self._set_health(health_pb2.HealthCheckResponse.SERVING)
		self.ready.set()

	async def shutdown(self, grace_s: float | None = None) -> None:
		"""Health NOT_SERVING, refuse new jobs, let the running job finish (or cancel it), then stop."""
		if self._stopping:
			return
		self._stopping = True
		grace = self.settings.server.grace_period_s if grace_s is None else grace_s
		log.info('shutting down (grace period %.1fs)', grace)
		await self.health.enter_graceful_shutdown()
		self.gate.closed = True  # new calls get UNAVAILABLE; the running job's stream goes on
		if self._prepare is not None:
			await _guarded('the start', self._prepare)
		await _guarded('the hasher', self.hasher.stop())
		await _guarded('the recommender', self.recommender.stop())
		if self.cluster is not None:
			await _guarded("the cluster's tasks", self.cluster.stop())
		await _guarded('the drain', self.manager.drain(grace))
		if self.cluster is not None:
			await _guarded('the cluster', self.cluster.close())
		await _guarded('the heartbeat', self.heartbeat.stop())
		await _guarded('the gRPC server', self.server.stop(_STOP_GRACE_S))
		if self.http is not None:
			await _guarded('the HTTP gateway', self.http.stop())
		self.recommender.close()
		await _guarded('the store', self.database.close())
		if self.catalog_db is not self.database:
			await _guarded("the node's catalog store", self.catalog_db.close())
		if self.endpoints.socket is not None:
			self.endpoints.socket.unlink(missing_ok=True)
		self.lock.release()
		log.info('stopped')


async def _guarded(what: str, step: Awaitable[object]) -> None:
	"""One step of a shutdown: one that fails is logged and the next steps still run (the servers always stop)."""
	try:
		await step
	except Exception:
		log.exception('shutting down %s failed; stopping the rest', what)


def _freeze_imports() -> None:
	"""Once per process, before any model loads: what is there now (torch's, diffusers' and transformers' modules)
	lives as long as the process. Frozen, the collector's full passes skip it; they otherwise stall a request for
	100s of ms now and then (bench/recommend.py: RecommendLoras p99 ~400 ms before, ~30-40 ms after). Models load
	after it, so an unloaded model's cycles are still collected."""
	if not gc.get_freeze_count():
		gc.freeze()


async def serve(settings: Settings, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
	daemon = Daemon(settings)
	await daemon.start()
	stop = asyncio.Event()
	loop = asyncio.get_running_loop()
	for sig in signals:
		loop.add_signal_handler(sig, stop.set)
	await stop.wait()
	await daemon.shutdown()
