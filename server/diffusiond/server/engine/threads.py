"""How many CPU threads torch uses: chosen, not inherited. Worker thread only.

torch's default is one OpenMP thread per core the machine has, spinning while it waits for the others. In a
container that counts the host's cores, not the ones granted; and on a busy machine a spinning thread waits
a whole time slice for a partner another process holds off its core, at every barrier of a generation
(measured: a 10-step job 7.3 s instead of 0.3 s with one other busy process; a direct diffusers call 37 s
with two). So: as many threads as the cores this process may use (its CPU affinity, capped by a cgroup CPU
quota), fixed for the daemon's life so that the same request always gives the same pixels (a different
thread count sums in a different order), one inter-op thread (one job at a time), and threads that spin
only briefly at a barrier before they sleep (GOMP_SPINCOUNT=1000, set by launch.py before torch loads).
`device.cpu_threads` fixes the count.
"""

import contextlib
import logging
import math
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def usable_cores() -> int:
	"""The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (containers)."""
	cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
	quota = cgroup_quota()
	return max(1, min(cores, math.ceil(quota))) if quota else cores


def cgroup_quota(root: Path = Path('/sys/fs/cgroup')) -> float | None:
	"""Cores granted by the cgroup (v2 cpu.max, v1 cfs quota), None when unlimited or not in one."""
	try:
		text = (root / 'cpu.max').read_text().split()
		if text and text[0] != 'max':
			return int(text[0]) / int(text[1])
		if text:
			return None
	except (OSError, ValueError, IndexError):
		pass
	try:
		quota = int((root / 'cpu' / 'cpu.cfs_quota_us').read_text())
		period = int((root / 'cpu' / 'cpu.cfs_period_us').read_text())
	except (OSError, ValueError):
		return None
	return quota / period if quota > 0 else None


def set_threads(fixed: int = 0) -> int:
	"""Sets torch's thread pools once, at start; the intra-op thread count."""
	threads = fixed or usable_cores()
	torch.set_num_threads(threads)
	# Refused once set, or once inter-op work ran in this process (tests start several daemons in one).
	with contextlib.suppress(RuntimeError):
		torch.set_num_interop_threads(1)
	log.info(
		'torch CPU threads: %d (%s), OpenMP spin count %s',
		threads,
		'set' if fixed else 'the usable cores',
		os.environ.get('GOMP_SPINCOUNT', 'default (300000)'),
	)
	return threads
