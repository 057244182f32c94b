"""How many CPU threads torch uses: chosen, not inherited. Worker thread only.

torch's default is one OpenMP thread per core with threads that spin while they wait for each other. On a
busy machine that collapses: a spinning thread waits for a partner that another process holds off its core,
for a whole time slice, at every one of the thousands of barriers in a generation (measured: a 10-step job
14x slower through the daemon with one other busy process, and 37 s instead of 0.3 s for a direct call with
two). The policy here: use the cores this process may use (CPU affinity and a cgroup quota, not the host's
count), minus what the rest of the machine is using right now, re-read before every job and every step, so
a thread never waits for a core it will not get; one thread needs no barrier at all. On a GPU the CPU only
feeds the device and the same rule keeps it from fighting other work. `device.cpu_threads` fixes the count.
"""

import contextlib
import logging
import math
import os
import time
from pathlib import Path

import psutil
import torch
from pydantic import BaseModel

log = logging.getLogger(__name__)
RESAMPLE_S = 0.25  # the load is read at most this often (/proc/stat ticks are 10 ms)


def usable_cores() -> int:
	"""The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (containers)."""
	cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
	quota = _cgroup_quota()
	return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_quota() -> float | None:
	"""Cores granted by the cgroup (v2 cpu.max, v1 cfs quota), None when unlimited or not in one."""
	try:
		text = Path('/sys/fs/cgroup/cpu.max').read_text().split()
		if text and text[0] != 'max':
			return int(text[0]) / int(text[1])
		quota = int(Path('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').read_text())
		period = int(Path('/sys/fs/cgroup/cpu/cpu.cfs_period_us').read_text())
	except (OSError, ValueError, IndexError):
		return None
	return quota / period if quota > 0 else None


def threads_for(cores: int, others: float) -> int:
	"""Threads for `cores` usable cores when other processes keep `others` cores busy: what is left, at least one."""
	return max(1, min(cores, round(cores - max(0.0, others))))


class _Sample(BaseModel):
	at: float
	machine_busy: float  # CPU seconds the whole machine spent busy, since boot
	ours: float  # CPU seconds this process spent


def _sample() -> _Sample:
	times = psutil.cpu_times()
	busy = times.user + times.nice + times.system + getattr(times, 'irq', 0.0) + getattr(times, 'softirq', 0.0)
	own = psutil.Process().cpu_times()
	return _Sample(at=time.monotonic(), machine_busy=busy + getattr(times, 'steal', 0.0), ours=own.user + own.system)


class ThreadPolicy:
	"""Sets torch's intra-op threads to the cores left free by other processes (at least one)."""

	def __init__(self, fixed: int = 0) -> None:
		self.cores = usable_cores()
		self.fixed = fixed
		self._last: _Sample | None = None
		self.threads = fixed or self.cores
		torch.set_num_threads(self.threads)
		# One job at a time: no inter-op parallelism to feed. Refused once set, or once inter-op work ran in this
		# process (tests start several daemons in one).
		with contextlib.suppress(RuntimeError):
			torch.set_num_interop_threads(1)
		log.info('torch CPU threads: %s (%d usable cores)', fixed or 'adaptive', self.cores)

	def adjust(self) -> int:
		"""Re-reads the machine's load (at most every RESAMPLE_S) and resizes torch's pool; the thread count."""
		if self.fixed:
			return self.threads
		now = time.monotonic()
		if self._last is not None and now - self._last.at < RESAMPLE_S:
			return self.threads
		sample = _sample()
		if self._last is not None:
			elapsed = sample.at - self._last.at
			others = (sample.machine_busy - self._last.machine_busy - (sample.ours - self._last.ours)) / elapsed
			wanted = threads_for(self.cores, others)
			if wanted != self.threads:
				torch.set_num_threads(wanted)
				self.threads = wanted
		self._last = sample
		return self.threads
