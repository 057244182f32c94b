"""SystemService: what the daemon runs on and what it holds."""

import time
from importlib.metadata import PackageNotFoundError, version

import grpc
import psutil
from google.protobuf import duration_pb2

from diffusiond.server import __version__
from diffusiond.server.cluster.heartbeat import Heartbeat
from diffusiond.server.jobs.engine_api import CacheBounds
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.node_records import NodeRecord
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc

_LIBRARIES = ('torch', 'diffusers', 'transformers', 'grpcio', 'protobuf')
_KINDS = {'cpu': sys_pb.DEVICE_KIND_CPU, 'cuda': sys_pb.DEVICE_KIND_CUDA, 'mps': sys_pb.DEVICE_KIND_MPS}


def _library_versions() -> list[sys_pb.LibraryVersion]:
	found = []
	for name in _LIBRARIES:
		try:
			found.append(sys_pb.LibraryVersion(name=name, version=version(name)))
		except PackageNotFoundError:
			continue
	return found


def node_to_pb(record: NodeRecord, alive: bool) -> sys_pb.NodeInfo:
	found = sys_pb.NodeInfo(
		node=record.id,
		address=record.address,
		device=record.device,
		alive=alive,
		queue_depth=record.status.queue_depth,
		busy=record.status.busy,
		loaded_models=record.status.loaded,
		models=record.status.models,
		epoch=record.epoch,
	)
	found.heartbeat_time.FromDatetime(record.heartbeat_at)
	found.start_time.FromDatetime(record.started_at)
	return found


class SystemService(sys_grpc.SystemServiceServicer):
	def __init__(self, manager: PipelineManager, cache: CacheBounds, heartbeat: Heartbeat) -> None:
		self._manager = manager
		self._cache = cache
		self._heartbeat = heartbeat
		self._started = time.monotonic()
		self._process = psutil.Process()
		self._libraries = _library_versions()

	async def GetSystemInfo(
		self,
		request: sys_pb.GetSystemInfoRequest,
		context: grpc.aio.ServicerContext[sys_pb.GetSystemInfoRequest, sys_pb.GetSystemInfoResponse],
	) -> sys_pb.GetSystemInfoResponse:
		status = await self._manager.status()
		nodes = await self._heartbeat.repo.all()
		memory = psutil.virtual_memory()
		device = status.device
		uptime = duration_pb2.Duration()
		uptime.FromNanoseconds(int((time.monotonic() - self._started) * 1e9))
		return sys_pb.GetSystemInfoResponse(
			version=__version__,
			device=sys_pb.DeviceInfo(
				kind=_KINDS.get(device.kind, sys_pb.DEVICE_KIND_UNSPECIFIED),
				name=device.name,
				dtype=device.dtype,
				memory_total_bytes=device.memory_total_bytes,
				memory_used_bytes=device.memory_used_bytes,
			),
			process_rss_bytes=self._process.memory_info().rss,
			loaded_models=[
				sys_pb.LoadedModel(
					name=entry.info.name,
					path=str(entry.info.path),
					demo=entry.info.demo,
					native_size=entry.info.native_size,
					id=entry.info.id,
					bytes=entry.bytes,
					active=entry.active,
				)
				for entry in status.cached
			],
			model_cache_bytes=sum(entry.bytes for entry in status.cached),
			model_cache_max_bytes=self._cache.max_bytes,
			model_cache_max_models=self._cache.max_models,
			memory_total_bytes=memory.total,
			memory_available_bytes=memory.available,
			node=self._manager.node,
			default_model=status.default_model,
			queue_depth=status.queue_depth,
			queue_capacity=status.queue_capacity,
			busy=status.busy,
			uptime=uptime,
			libraries=self._libraries,
			nodes=[node_to_pb(record, self._heartbeat.alive(record)) for record in nodes],
		)
