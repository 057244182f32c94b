"""Catalog benchmarks: a cold scan of 1000 header-only checkpoints, a warm rescan, sha256 throughput."""

import asyncio
import os
import tempfile
import time
from pathlib import Path

from diffusiond.server.catalog import Catalog
from diffusiond.server.catalog.files import sha256_file
from diffusiond.server.store import Database, ModelRepository, default_url
from tests.checkpoints import fake_checkpoint

BASES = ('sd1', 'sd2', 'sdxl')


async def _scan(root: Path, count: int) -> tuple[float, float, int]:
	models = root / 'models'
	for index in range(count):
		fake_checkpoint(models / f'group-{index % 10}' / f'model-{index:04d}.safetensors', BASES[index % 3])
	database = Database(default_url(root))
	await database.upgrade()
	catalog = Catalog(ModelRepository(database.sessions), models, root / 'configs', '', False)
	cold = await catalog.refresh()
	warm = await catalog.refresh()
	listed = len(await catalog.repo.all())
	await database.close()
	return cold.elapsed_s, warm.elapsed_s, listed


def run_catalog(count: int = 1000, hash_mib: int = 256) -> list[tuple[str, str]]:
	with tempfile.TemporaryDirectory() as scratch:
		root = Path(scratch)
		cold, warm, listed = asyncio.run(_scan(root, count))
		assert listed == count, f'{listed} of {count} files catalogued'
		big = root / 'big.bin'
		with big.open('wb') as file:
			for _ in range(hash_mib):
				file.write(os.urandom(1 << 20))
		start = time.perf_counter()
		sha256_file(big)
		hashing = time.perf_counter() - start
	return [
		(f'cold scan of {count} checkpoints (probe + catalog)', f'{cold * 1000:.0f} ms'),
		(f'warm rescan of {count} checkpoints', f'{warm * 1000:.0f} ms'),
		('sha256 throughput (background hasher)', f'{hash_mib / hashing:.0f} MiB/s'),
	]
