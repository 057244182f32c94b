"""The daemon on a busy machine: daemon ÷ direct diffusers with 0, 1 and 2 other busy processes.

Both sides are real processes started the way users start them: `diffusiond serve` (the production entry
point, so its threading policy applies) and a direct diffusers script with torch's defaults (direct_call.py).
Each busy process is `python -c "while True: pass"`. Tiny model, 64², 10 steps; medians of a few calls.
"""

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from diffusiond.server.engine.demo import build_demo_model
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

STEPS = 10
SIZE = 64


@contextlib.contextmanager
def _busy(count: int) -> Iterator[None]:
	spinners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(count)]
	try:
		time.sleep(0.5 if count else 0)
		yield
	finally:
		for spinner in spinners:
			spinner.kill()
			spinner.wait()


@contextlib.contextmanager
def _daemon(data_dir: Path, env: dict[str, str]) -> Iterator[str]:
	port_file = data_dir / 'port'
	port_file.unlink(missing_ok=True)
	command = [sys.executable, '-m', 'diffusiond.server', 'serve', '--port', '0', '--port-file', str(port_file)]
	command += ['--data-dir', str(data_dir), '--log-level', 'WARNING']
	variables = {**os.environ, 'DIFFUSIOND_MODELS__DEMO_MODEL': 'false', 'TRANSFORMERS_VERBOSITY': 'error', **env}
	process = subprocess.Popen(command, env=variables, stderr=subprocess.DEVNULL)
	try:
		for _ in range(1200):
			if port_file.exists() and port_file.read_text().strip():
				break
			time.sleep(0.1)
		address = f'127.0.0.1:{port_file.read_text().strip()}'
		with grpc.insecure_channel(address) as channel:
			grpc.channel_ready_future(channel).result(timeout=120)
		yield address
	finally:
		process.terminate()
		process.wait(60)


def _served(address: str, repeats: int) -> float:
	request = gen_pb.GenerateRequest(prompt='a red fox', steps=STEPS, seed=1, width=SIZE, height=SIZE)
	with grpc.insecure_channel(address) as channel:
		stub = gen_grpc.GenerationServiceStub(channel)

		def call() -> float:
			start = time.perf_counter()
			for _ in stub.Generate(request):
				pass
			return time.perf_counter() - start

		call()
		return statistics.median(call() for _ in range(repeats))


def _direct(model: Path, repeats: int) -> float:
	command = [sys.executable, '-m', 'bench.direct_call', str(model), '--steps', str(STEPS), '--size', str(SIZE)]
	output = subprocess.run(
		[*command, '--repeats', str(repeats)],
		capture_output=True,
		text=True,
		check=True,
		env={**os.environ, 'TRANSFORMERS_VERBOSITY': 'error'},
	)
	return float(output.stdout.strip().splitlines()[-1])


def run_busy(repeats: int = 5, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
	rows = []
	with tempfile.TemporaryDirectory() as scratch:
		data = Path(scratch)
		model = build_demo_model(data / 'models' / 'tiny-sd')
		with _daemon(data, env or {}) as address:
			for busy in (0, 1, 2):
				with _busy(busy):
					served = _served(address, repeats)
					direct = _direct(model, repeats)
				rows.append((f'busy CPU: {busy} busy process(es), daemon s / direct s', f'{served:.2f} / {direct:.2f}'))
				rows.append((f'busy CPU: {busy} busy process(es), daemon ÷ direct', f'{served / direct:.3f}'))
	return rows


if __name__ == '__main__':
	for name, value in run_busy():
		print(f'{name:<60} {value:>14}')
