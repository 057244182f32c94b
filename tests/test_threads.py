"""The CPU thread policy: the cores this process may use, minus what other processes use right now."""

import subprocess
import sys
import time

import torch

from diffusiond.server.pipeline.threads import ThreadPolicy, threads_for, usable_cores


def test_threads_are_what_other_processes_leave() -> None:
	assert threads_for(2, 0.0) == 2
	assert threads_for(2, 0.3) == 2
	assert threads_for(2, 0.7) == 1
	assert threads_for(2, 1.0) == 1
	assert threads_for(2, 5.0) == 1, 'never none'
	assert threads_for(8, 2.6) == 5
	assert threads_for(4, -1.0) == 4, 'a negative reading (counters wrapped) is no load'


def test_a_fixed_count_is_kept() -> None:
	before = torch.get_num_threads()
	try:
		policy = ThreadPolicy(fixed=1)
		assert (policy.adjust(), torch.get_num_threads()) == (1, 1)
	finally:
		torch.set_num_threads(before)


def test_a_busy_process_takes_a_thread_away() -> None:
	"""A real busy process: within a few samples the pool shrinks below the usable cores (or stays at one)."""
	before = torch.get_num_threads()
	cores = usable_cores()
	spinner = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
	try:
		policy = ThreadPolicy()
		deadline = time.monotonic() + 10
		while policy.adjust() >= cores > 1 and time.monotonic() < deadline:
			time.sleep(0.05)
		assert policy.threads == torch.get_num_threads()
		assert policy.threads < cores or cores == 1
	finally:
		spinner.kill()
		spinner.wait()
		torch.set_num_threads(before)
