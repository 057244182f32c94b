"""A real `diffusiond serve` child process on a data dir, for the tests that signal or kill it."""

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path


async def spawn_daemon(
	data_dir: Path,
	*extra: str,
	preexec: Callable[[], None] | None = None,
	env: dict[str, str] | None = None,
) -> tuple[asyncio.subprocess.Process, str]:
	"""Starts the daemon (no demo model) on a free port; returns the process and its address once it listens.

	`preexec` runs in the child before the daemon starts (resource limits); `env` adds variables."""
	port_file = data_dir / 'port'
	port_file.unlink(missing_ok=True)  # a restart on the same folder must not read the last run's port
	command = [sys.executable, '-m', 'diffusiond.server', 'serve', '--port', '0', '--port-file', str(port_file)]
	command += ['--data-dir', str(data_dir), '--log-level', 'WARNING', *extra]
	variables = {
		**os.environ,
		'DIFFUSIOND_MODELS__DEMO_MODEL': 'false',
		'TRANSFORMERS_VERBOSITY': 'error',
		**(env or {}),
	}
	process = await asyncio.create_subprocess_exec(
		*command,
		env=variables,
		stdout=asyncio.subprocess.DEVNULL,
		stderr=asyncio.subprocess.PIPE,
		preexec_fn=preexec,
	)
	for _ in range(600):
		if port_file.exists() and port_file.read_text().strip():
			return process, f'127.0.0.1:{port_file.read_text().strip()}'
		if process.returncode is not None:
			break
		await asyncio.sleep(0.1)
	process.kill()
	raise AssertionError(f'the daemon never listened (exit code {process.returncode})')
