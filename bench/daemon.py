"""Benchmark plumbing: a daemon in a background thread, a backend that timestamps steps, percentiles."""

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.server.app import Daemon
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.jobs.engine_api import PreviewHook, RunOutput, StageHook, StepHook
from diffusiond.server.schemas import JobSpec
from diffusiond.server.settings import Settings
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc


class TimedBackend(DiffusersEngine):
	"""Records when each step's progress is handed to the loop (same clock as the client)."""

	def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
		super().__init__(device, dtype, PipelineCache(3, 2**40))
		self.emitted: dict[int, float] = {}

	def run(
		self,
		specs: list[JobSpec],
		on_step: StepHook,
		on_previews: list[PreviewHook | None],
		on_stage: StageHook,
		savers: tuple[str, ...] = (),
	) -> RunOutput:
		def timed(step: int, total: int) -> bool:
			self.emitted[step] = time.perf_counter()
			return on_step(step, total)

		return super().run(specs, timed, on_previews, on_stage, savers)


_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}  # each start_daemon daemon's loop, for stop_daemon


def percentile(values: list[float], q: float) -> float:
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_daemon(
	data_dir: Path,
	backend: DiffusersEngine,
	device: dict[str, int] | None = None,
	http: bool = False,
	more: dict[str, dict[str, object]] | None = None,
) -> Daemon:
	"""A daemon in a background thread with its own loop; `device` overrides device settings; `http` serves the
	gateway on a free port; `more`: other settings by group."""
	data: dict[str, dict[str, object]] = {
		'server': {'port': 0},
		'storage': {'data_dir': str(data_dir)},
		'models': {'demo_model': False},
		'device': {**(device or {})},
		'http': {'port': 0} if http else {},
	}
	for group, values in (more or {}).items():
		data.setdefault(group, {}).update(values)
	settings = Settings.model_validate(data)
	ready = threading.Event()
	holder: list[Daemon] = []

	async def main() -> None:
		daemon = Daemon(settings, backend)
		await daemon.start()
		await daemon.ready.wait()
		holder.append(daemon)
		_LOOPS[id(daemon)] = asyncio.get_running_loop()
		ready.set()
		await asyncio.Event().wait()

	threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
	ready.wait(120)
	return holder[0]


def stop_daemon(daemon: Daemon) -> None:
	"""Shuts a daemon of start_daemon down (before what it uses, a database server, goes away)."""
	loop = _LOOPS.pop(id(daemon))
	asyncio.run_coroutine_threadsafe(daemon.shutdown(0.0), loop).result(60)


def unary_latencies(channel: grpc.Channel, calls: int = 200) -> dict[str, list[float]]:
	"""Seconds per call of Health.Check, ListModels and GetSystemInfo, interleaved."""
	health = health_pb2_grpc.HealthStub(channel)
	models = model_grpc.ModelServiceStub(channel)
	system = sys_grpc.SystemServiceStub(channel)
	probes: dict[str, Callable[[], object]] = {
		'Health.Check': lambda: health.Check(health_pb2.HealthCheckRequest()),
		'ListModels': lambda: models.ListModels(model_pb.ListModelsRequest()),
		'GetSystemInfo': lambda: system.GetSystemInfo(sys_pb.GetSystemInfoRequest()),
	}
	timings: dict[str, list[float]] = {name: [] for name in probes}
	for _ in range(calls):
		for name, probe in probes.items():
			start = time.perf_counter()
			probe()
			timings[name].append(time.perf_counter() - start)
	return timings
