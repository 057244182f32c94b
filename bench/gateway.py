"""The HTTP gateway against gRPC on the same daemon and job: A1111's txt2img ÷ Generate (median of alternated
runs), and /sdapi/v1/progress latency while a job runs."""

import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
import torch

from bench.daemon import TimedBackend, percentile, start_daemon
from bench.timing import median_seconds
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

PROMPT = 'a red fox in the snow'


def run_gateway(repeats: int = 7, steps: int = 20, size: int = 64, polls: int = 300) -> list[tuple[str, str]]:
	with tempfile.TemporaryDirectory() as scratch:
		build_demo_model(Path(scratch) / 'models' / 'tiny-sd')
		daemon = start_daemon(Path(scratch), TimedBackend(torch.device('cpu'), torch.float32), http=True)
		assert daemon.http is not None
		http = httpx.Client(base_url=f'http://127.0.0.1:{daemon.http.port}', timeout=600)
		stub = gen_grpc.GenerationServiceStub(grpc.insecure_channel(f'127.0.0.1:{daemon.port}'))
		job = {'prompt': PROMPT, 'steps': steps, 'seed': 1, 'width': size, 'height': size, 'sampler_name': 'Euler a'}
		request = gen_pb.GenerateRequest(
			prompt=PROMPT, steps=steps, seed=1, width=size, height=size, sampler=gen_pb.SAMPLER_EULER_A
		)

		def over_http() -> None:
			http.post('/sdapi/v1/txt2img', json=job).raise_for_status()

		def over_grpc() -> None:
			list(stub.Generate(request))

		over_http()
		over_grpc()
		ratios = [median_seconds(over_http, 1) / median_seconds(over_grpc, 1) for _ in range(repeats)]
		long_job = threading.Thread(target=lambda: http.post('/sdapi/v1/txt2img', json={**job, 'steps': 150}))
		long_job.start()
		while not http.get('/sdapi/v1/progress').json()['state']['job']:
			time.sleep(0.01)
		latencies = []
		for _ in range(polls):
			start = time.perf_counter()
			http.get('/sdapi/v1/progress').raise_for_status()
			latencies.append(time.perf_counter() - start)
		long_job.join()
	ratios.sort()
	return [
		(f'A1111 txt2img over HTTP ÷ gRPC Generate ({steps} steps, {size}²)', f'{ratios[len(ratios) // 2]:.3f}'),
		(
			'/sdapi/v1/progress p50 / p99 while generating (ms)',
			f'{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f}',
		),
	]


if __name__ == '__main__':
	for name, value in run_gateway():
		print(f'{name:<60} {value:>14}')
