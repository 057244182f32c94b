"""The CPU thread policy: the cores this process may use, fixed; OpenMP threads that sleep at barriers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np
import torch

from diffusiond.server.engine.threads import cgroup_quota, set_threads, usable_cores
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import collect, pixels


def test_a_cgroup_quota_caps_the_cores(tmp_path: Path) -> None:
	(tmp_path / 'cpu.max').write_text('150000 100000\n')
	assert cgroup_quota(tmp_path) == 1.5
	(tmp_path / 'cpu.max').write_text('max 100000\n')
	assert cgroup_quota(tmp_path) is None
	(tmp_path / 'cpu.max').unlink()
	(tmp_path / 'cpu').mkdir()
	(tmp_path / 'cpu' / 'cpu.cfs_quota_us').write_text('200000')
	(tmp_path / 'cpu' / 'cpu.cfs_period_us').write_text('100000')
	assert cgroup_quota(tmp_path) == 2.0
	(tmp_path / 'cpu' / 'cpu.cfs_quota_us').write_text('-1')
	assert cgroup_quota(tmp_path) is None
	assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_the_count_is_set_once_and_kept() -> None:
	before = torch.get_num_threads()
	try:
		assert set_threads(1) == 1
		assert torch.get_num_threads() == 1
		assert set_threads() == usable_cores()
	finally:
		torch.set_num_threads(before)


async def test_the_daemon_process_starts_with_briefly_spinning_openmp_threads(tmp_path: Path) -> None:
	"""`python -m diffusiond.server` sets GOMP_SPINCOUNT before torch loads; a user's own value wins."""
	probe = 'import os, runpy, sys; sys.argv = ["x", "--version"]; '
	for env, expected in (({}, '1000'), ({'GOMP_SPINCOUNT': '300000'}, '300000')):
		variables = {key: value for key, value in os.environ.items() if key != 'GOMP_SPINCOUNT'} | env
		process = await asyncio.create_subprocess_exec(
			sys.executable,
			'-c',
			probe + 'from diffusiond.server import launch; launch.runpy.run_module = lambda *a, **k: '
			'print(os.environ["GOMP_SPINCOUNT"]); launch.main()',
			env=variables,
			stdout=asyncio.subprocess.PIPE,
		)
		out, _ = await process.communicate()
		assert out.decode().strip() == expected


async def test_a_busy_machine_never_changes_the_pixels(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	"""The thread count is fixed: a run on a busy machine gives the pixels of a run on an idle one."""
	request = gen_pb.GenerateRequest(prompt='a fox', steps=4, seed=5, width=64, height=64)
	idle = await collect(gen.Generate(request))
	spinner = await asyncio.create_subprocess_exec(sys.executable, '-c', 'while True: pass')
	try:
		await asyncio.sleep(0.3)
		busy = await collect(gen.Generate(request))
	finally:
		spinner.kill()
		await spinner.wait()
	first = next(event.image.data for event in idle if event.HasField('image'))
	second = next(event.image.data for event in busy if event.HasField('image'))
	assert np.array_equal(pixels(first), pixels(second))
