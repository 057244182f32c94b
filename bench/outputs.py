"""Outputs store benchmark: writing and reading one 512² PNG through the outputs folder (temp, fsync, rename) and
through an S3-compatible bucket (boto3 against moto's server mode on loopback, so the figure is the client's and the
protocol's cost, not a real network's). The ratio says what a job's image costs when several daemons share a bucket."""

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from PIL import Image

from diffusiond.server.history.outputs import FolderOutputs, Outputs
from diffusiond.server.history.s3_outputs import S3Outputs
from tests.s3_server import CREDENTIALS, REGION, s3_server

_REPEATS = 40


def _png() -> bytes:
	buffer = io.BytesIO()
	Image.frombytes('RGB', (512, 512), os.urandom(512 * 512 * 3)).save(buffer, format='PNG')
	return buffer.getvalue()


def _times(action: Callable[[int], object]) -> list[float]:
	found = []
	for index in range(_REPEATS):
		start = time.perf_counter()
		action(index)
		found.append((time.perf_counter() - start) * 1000)
	return found


def _measure(store: Outputs, data: bytes) -> tuple[float, float]:
	"""(write p50 ms, read p50 ms)."""
	writes = _times(lambda index: store.write(f'2026-12-07/{index:036d}-0.png', data))
	reads = _times(lambda index: store.read(f'2026-12-07/{index:036d}-0.png'))
	return statistics.median(writes), statistics.median(reads)


def run_outputs() -> list[tuple[str, str]]:
	data = _png()
	with tempfile.TemporaryDirectory() as folder:
		local = _measure(FolderOutputs(Path(folder)), data)
	server = s3_server()
	endpoint = next(server)
	os.environ.update(CREDENTIALS | {'AWS_DEFAULT_REGION': REGION})  # where boto3 reads them, as a deployment sets them
	boto3.client('s3', endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket='bench')
	remote = _measure(S3Outputs('s3://bench/outputs', endpoint), data)
	server.close()
	size = f'{len(data) / 1024:.0f} KiB'
	return [
		(f'outputs: write a 512² PNG ({size}) p50 ms folder / S3', f'{local[0]:.1f} / {remote[0]:.1f}'),
		('outputs: write ratio S3 ÷ folder (moto, loopback)', f'{remote[0] / local[0]:.2f}'),
		('outputs: read a 512² PNG p50 ms folder / S3', f'{local[1]:.2f} / {remote[1]:.1f}'),
		('outputs: read ratio S3 ÷ folder (moto, loopback)', f'{remote[1] / local[1]:.1f}'),
	]


if __name__ == '__main__':
	for name, value in run_outputs():
		print(f'{name:<60} {value:>14}')
