"""A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary folder (as the `postgres` user when
run as root, since initdb refuses root), started on a free port bound to 127.0.0.1, stopped on exit, also when the
tests fail or the run is interrupted.

`python -m tests.pg_cluster COMMAND…` runs COMMAND with DIFFUSIOND_TEST_POSTGRES_URL set (what `make pytest`
does); where no PostgreSQL is installed it installs Debian's package when it can (root with apt-get), else runs
COMMAND without the URL and says that the PostgreSQL tests will skip.
"""

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

URL_VARIABLE = 'DIFFUSIOND_TEST_POSTGRES_URL'
USER = 'postgres'
_SERVER_OPTIONS = '-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200'


def binaries() -> Path | None:
	"""The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
	found = shutil.which('initdb')
	candidates = [found] if found else []
	candidates += sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), reverse=True)
	for candidate in candidates:
		folder = Path(candidate).resolve().parent
		if (folder / 'pg_ctl').is_file():
			return folder
	return None


def _install() -> None:
	if os.geteuid() == 0 and shutil.which('apt-get'):
		print("PostgreSQL is not installed: installing Debian's package for the tests", flush=True)
		env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
		install = ['apt-get', 'install', '-y', '-q', 'postgresql']
		if subprocess.run(install, check=False, env=env).returncode != 0:  # a fresh machine's lists may be empty
			subprocess.run(['apt-get', 'update', '-q'], check=False, env=env)
			subprocess.run(install, check=False, env=env)


def _free_port() -> int:
	with socket.socket() as probe:
		probe.bind(('127.0.0.1', 0))
		return int(probe.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
	"""Root runs the server's tools as the postgres user; anyone else as themselves."""
	return ['runuser', '-u', USER, '--', *command] if os.geteuid() == 0 else command


def _start(bin_dir: Path, root: Path, data: Path, tries: int = 5) -> int:
	"""Starts the server on a free port; another port if that one was taken meanwhile. Returns the port."""
	for _ in range(tries):
		port = _free_port()
		options = f'-p {port} -c listen_addresses=127.0.0.1 -k {root} {_SERVER_OPTIONS}'
		control = [str(bin_dir / 'pg_ctl'), '-D', str(data), '-l', str(root / 'server.log'), '-w', '-o', options]
		if subprocess.run(_as_owner([*control, 'start']), check=False, stdout=subprocess.DEVNULL).returncode == 0:
			return port
	log = (root / 'server.log').read_text(errors='replace')[-2000:]
	raise RuntimeError(f'PostgreSQL did not start on a free port in {tries} tries:\n{log}')


@contextlib.contextmanager
def cluster(bin_dir: Path) -> Iterator[str]:
	"""A running cluster for as long as the block lasts; yields its SQLAlchemy URL (database `postgres`)."""
	with tempfile.TemporaryDirectory(prefix='diffusiond-pg-') as scratch:
		root = Path(scratch)
		if os.geteuid() == 0:
			shutil.chown(root, USER)
		data = root / 'data'
		init = [str(bin_dir / 'initdb'), '-D', str(data), '-U', USER, '-A', 'trust', '-E', 'UTF8', '--no-sync']
		subprocess.run(_as_owner(init), check=True, stdout=subprocess.DEVNULL)
		port = _start(bin_dir, root, data)
		try:
			yield f'postgresql+asyncpg://{USER}@127.0.0.1:{port}/postgres'
		finally:
			stop = [str(bin_dir / 'pg_ctl'), '-D', str(data), '-m', 'immediate', '-w', 'stop']
			subprocess.run(_as_owner(stop), check=False, stdout=subprocess.DEVNULL)


def main(command: list[str]) -> int:
	signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))  # the cluster still stops
	bin_dir = binaries()
	if bin_dir is None:
		_install()
		bin_dir = binaries()
	if bin_dir is None:
		print('no PostgreSQL binaries (initdb, pg_ctl) found: the PostgreSQL tests will skip', flush=True)
		return subprocess.call(command)
	with cluster(bin_dir) as url:
		print(f'PostgreSQL for the tests at {url}', flush=True)
		return subprocess.call(command, env={**os.environ, URL_VARIABLE: url})


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
