"""Generation benchmarks:

- Generate through the daemon vs the same direct diffusers call in this process (median wall time,
  tiny model, 64x64, 20 steps, several repeats, alternated so drift hits both alike) as a ratio; the same
  for img2img and for txt2img with a LoRA (variants.py);
- progress event latency: from the step callback on the worker to the client receiving the event;
- Health.Check, ListModels and GetSystemInfo p50/p99 while generations run (one running, two queued).

The daemon runs in a background thread with its own event loop; the client is a separate blocking
gRPC channel in the main thread, as an external client would be.
"""

import statistics
import tempfile
import time
from pathlib import Path

import grpc
import torch
from diffusers import StableDiffusionPipeline

from bench.daemon import TimedBackend, percentile, start_daemon, unary_latencies
from bench.variants import img2img_ratio, with_lora_ratio
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.lora_files import write_tiny_lora

PROMPT = 'a red fox in the snow'


def run_generation(repeats: int, steps: int, size: int) -> list[tuple[str, str]]:
	"""The table rows: daemon vs direct diffusers, progress latency, unary latency during a job."""
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	with tempfile.TemporaryDirectory() as scratch:
		model_dir = build_demo_model(Path(scratch) / 'models' / 'tiny-sd')
		lora_file = write_tiny_lora(Path(scratch) / 'loras' / 'tiny-lora.safetensors')
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

		i2i_ratio = img2img_ratio(stub, direct_pipe, request, repeats)

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

		lora_ratio = with_lora_ratio(stub, request, direct_pipe, lora_file, repeats)

		# Three long jobs (one running, two queued) while a client measures cheap calls.
		long_calls = [stub.Generate(gen_pb.GenerateRequest(prompt=PROMPT, steps=steps * 5, seed=i)) for i in range(3)]
		next(iter(long_calls[0]))
		unary = unary_latencies(channel)
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
			f'{i2i_ratio:.3f}',
		),
		('ratio daemon / direct, with a LoRA (weight 0.8)', f'{lora_ratio:.3f}'),
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
