"""Generation benchmarks:

- Generate through the daemon vs the same direct diffusers call in this process (median wall time,
  tiny model, 64x64, 20 steps, several repeats, alternated so drift hits both alike) as a ratio;
- progress event latency: from the step callback on the worker to the client receiving the event;
- Health.Check, ListModels and GetSystemInfo p50/p99 while generations run (one running, two queued).

The daemon runs in a background thread with its own event loop; the client is a separate blocking
gRPC channel in the main thread, as an external client would be.
"""

import asyncio
import io
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import torch
from diffusers import AutoPipelineForImage2Image, StableDiffusionPipeline
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.server.pipeline.backend import DiffusersBackend, RunOutput
from diffusiond.server.pipeline.cache import PipelineCache
from diffusiond.server.pipeline.demo import build_demo_model
from diffusiond.server.pipeline.denoise import PreviewHook, StepHook
from diffusiond.server.schemas import JobSpec
from diffusiond.server.settings import Settings
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from diffusiond.v1 import system_service_pb2 as sys_pb
from diffusiond.v1 import system_service_pb2_grpc as sys_grpc

PROMPT = 'a red fox in the snow'


class TimedBackend(DiffusersBackend):
	"""Records when each step's progress is handed to the loop (same clock as the client)."""

	def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
		super().__init__(device, dtype, PipelineCache(3, 2**40))
		self.emitted: dict[int, float] = {}

	def run(self, spec: JobSpec, on_step: StepHook, on_preview: PreviewHook | None = None) -> RunOutput:
		def timed(step: int, total: int) -> None:
			self.emitted[step] = time.perf_counter()
			on_step(step, total)

		return super().run(spec, timed, on_preview)


def percentile(values: list[float], q: float) -> float:
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_daemon(data_dir: Path, backend: DiffusersBackend, device: dict[str, int] | None = None) -> Daemon:
	"""A daemon in a background thread with its own loop; `device` overrides device settings."""
	settings = Settings.model_validate(
		{
			'server': {'port': 0},
			'storage': {'data_dir': str(data_dir)},
			'models': {'demo_model': False},
			'device': device or {},
		}
	)
	ready = threading.Event()
	holder: list[Daemon] = []

	async def main() -> None:
		daemon = Daemon(settings, backend)
		await daemon.start()
		await daemon.ready.wait()
		holder.append(daemon)
		ready.set()
		await asyncio.Event().wait()

	threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
	ready.wait(120)
	return holder[0]


def run_generation(repeats: int, steps: int, size: int) -> list[tuple[str, str]]:
	"""The table rows: daemon vs direct diffusers, progress latency, unary latency during a job."""
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	with tempfile.TemporaryDirectory() as scratch:
		model_dir = build_demo_model(Path(scratch) / 'models' / 'tiny-sd')
		backend = TimedBackend(device, dtype)
		daemon = start_daemon(Path(scratch), backend)
		direct_pipe = StableDiffusionPipeline.from_pretrained(
			str(model_dir), dtype=dtype, safety_checker=None, requires_safety_checker=False
		).to(device)
		direct_pipe.set_progress_bar_config(disable=True)
		channel = grpc.insecure_channel(f'127.0.0.1:{daemon.port}')
		stub = gen_grpc.GenerationServiceStub(channel)
		request = gen_pb.GenerateRequest(prompt=PROMPT, steps=steps, seed=1, width=size, height=size)

		def direct() -> None:
			direct_pipe(
				prompt=PROMPT,
				width=size,
				height=size,
				num_inference_steps=steps,
				generator=[torch.Generator('cpu').manual_seed(1)],
			)

		def served() -> list[float]:
			latencies = []
			for event in stub.Generate(request):
				if event.HasField('progress'):
					latencies.append(time.perf_counter() - backend.emitted[event.progress.step])
			return latencies

		direct()
		served()  # warm-up
		direct_times, served_times, latencies = [], [], []
		for _ in range(repeats):
			start = time.perf_counter()
			direct()
			direct_times.append(time.perf_counter() - start)
			start = time.perf_counter()
			latencies.extend(served())
			served_times.append(time.perf_counter() - start)

		init = Image.fromarray(np.random.default_rng(3).integers(0, 255, (size, size, 3), dtype=np.uint8), 'RGB')
		buffer = io.BytesIO()
		init.save(buffer, format='PNG')
		i2i_request = gen_pb.GenerateRequest(
			prompt=PROMPT, steps=steps, seed=1, width=size, height=size, init_image=buffer.getvalue(), strength=0.75
		)
		direct_i2i = AutoPipelineForImage2Image.from_pipe(direct_pipe)
		direct_i2i.set_progress_bar_config(disable=True)
		i2i_direct, i2i_served = [], []
		for _ in range(repeats):
			start = time.perf_counter()
			direct_i2i(
				prompt=PROMPT,
				image=init,
				strength=0.75,
				num_inference_steps=steps,
				generator=[torch.Generator('cpu').manual_seed(1)],
			)
			i2i_direct.append(time.perf_counter() - start)
			start = time.perf_counter()
			for _ in stub.Generate(i2i_request):
				pass
			i2i_served.append(time.perf_counter() - start)

		preview_request = gen_pb.GenerateRequest()
		preview_request.CopyFrom(request)
		preview_request.preview_every = 1
		plain_times, preview_times = [], []
		for _ in range(repeats):
			start = time.perf_counter()
			for _ in stub.Generate(request):
				pass
			plain_times.append(time.perf_counter() - start)
			start = time.perf_counter()
			for _ in stub.Generate(preview_request):
				pass
			preview_times.append(time.perf_counter() - start)

		# Three long jobs (one running, two queued) while a client measures cheap calls.
		long_calls = [stub.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=steps * 5, seed=i)) for i in range(3)]
		next(iter(long_calls[0]))
		unary = _unary_latencies(channel)
		for call in long_calls:
			for _ in call:
				pass
		channel.close()

	direct_median = statistics.median(direct_times)
	served_median = statistics.median(served_times)
	return [
		(f'direct diffusers call, median of {repeats} ({steps} steps)', f'{direct_median * 1000:.1f} ms'),
		('Generate through the daemon, median', f'{served_median * 1000:.1f} ms'),
		('ratio daemon / direct', f'{served_median / direct_median:.3f}'),
		(
			'ratio daemon / direct, img2img (strength 0.75)',
			f'{statistics.median(i2i_served) / statistics.median(i2i_direct):.3f}',
		),
		(
			'ratio previews every step / none (goal: a few % at most)',
			f'{statistics.median(preview_times) / statistics.median(plain_times):.3f}',
		),
		('progress event latency p50', f'{percentile(latencies, 0.5) * 1000:.2f} ms'),
		('progress event latency p99', f'{percentile(latencies, 0.99) * 1000:.2f} ms'),
		*(
			(
				f'{name} during generation p50 / p99',
				f'{percentile(v, 0.5) * 1000:.2f} / {percentile(v, 0.99) * 1000:.2f} ms',
			)
			for name, v in unary.items()
		),
	]


def _unary_latencies(channel: grpc.Channel, calls: int = 200) -> dict[str, list[float]]:
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
