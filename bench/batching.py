"""Dynamic batching throughput: N concurrent clients against a daemon with batching off and on.

Each client thread sends its share of the same number of jobs (one image each, other prompt and seed per
job, same size/steps/sampler) one after the other; the table gives images per second and the median job
latency (submit to last event) for 1, 4 and 8 clients, batching off (1) and on (8 images per call).
"""

import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import grpc
import torch

from bench.daemon import start_daemon
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

CLIENTS = (1, 4, 8)
BATCH = 8


def _throughput(port: int, clients: int, jobs: int, steps: int, size: int) -> tuple[float, float]:
	"""(images per second, median job latency in seconds) for `jobs` jobs spread over `clients` threads."""
	channel = grpc.insecure_channel(f'127.0.0.1:{port}')
	stub = gen_grpc.GenerationServiceStub(channel)
	latencies: list[float] = []
	lock = threading.Lock()

	def client(index: int) -> None:
		for job in range(index, jobs, clients):
			request = gen_pb.GenerateRequest(
				prompt=f'a red fox, picture {job}', steps=steps, seed=job, width=size, height=size
			)
			start = time.perf_counter()
			for _ in stub.Generate(request):
				pass
			with lock:
				latencies.append(time.perf_counter() - start)

	threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
	start = time.perf_counter()
	for thread in threads:
		thread.start()
	for thread in threads:
		thread.join()
	elapsed = time.perf_counter() - start
	channel.close()
	return jobs / elapsed, statistics.median(latencies)


def run_batching(steps: int, size: int, jobs: int = 16) -> list[tuple[str, str]]:
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	rows: list[tuple[str, str]] = []
	with tempfile.TemporaryDirectory() as scratch:
		model = build_demo_model(Path(scratch) / 'model' / 'tiny-sd')
		ports = {}
		for batch in (1, BATCH):  # both daemons up first; then off and on alternate, so drift hits both alike
			data = Path(scratch) / f'batch-{batch}'  # one data folder per daemon (each holds its folder's lock)
			shutil.copytree(model, data / 'models' / 'tiny-sd')
			backend = DiffusersEngine(device, dtype, PipelineCache(1, 2**40))
			ports[batch] = start_daemon(data, backend, {'batch_max_images': batch}).port
			_throughput(ports[batch], 1, 2, steps, size)  # warm-up
		results = {
			(batch, clients): _throughput(ports[batch], clients, jobs, steps, size)
			for clients in CLIENTS
			for batch in (1, BATCH)
		}
	for clients in CLIENTS:
		off, on = results[(1, clients)], results[(BATCH, clients)]
		rows.append(
			(
				f'batching {clients} client(s): images/s off / on',
				f'{off[0]:.2f} / {on[0]:.2f} (x{on[0] / off[0]:.2f})',
			)
		)
		rows.append((f'batching {clients} client(s): median latency off / on', f'{off[1]:.2f} / {on[1]:.2f} s'))
	return rows
