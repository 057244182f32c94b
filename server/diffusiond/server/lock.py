"""One daemon per data folder: an OS lock on `<data dir>/diffusiond.lock`, held for the daemon's life.

The lock is `flock` on an open file: the kernel drops it when the process ends, however it ends (SIGKILL
included), so a stale lock file never blocks a restart. The file holds the holder's pid for the message.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

from diffusiond.server.listen import StartupError

LOCK_NAME = 'diffusiond.lock'


class DataDirLock:
	def __init__(self, data_dir: Path) -> None:
		self.path = data_dir / LOCK_NAME
		self._file: IO[str] | None = None

	def acquire(self) -> None:
		"""Takes the lock, or raises StartupError naming the pid that holds it."""
		self.path.parent.mkdir(parents=True, exist_ok=True)
		file = self.path.open('a+')
		try:
			fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
		except BlockingIOError:
			file.seek(0)
			holder = file.read().strip() or 'unknown'
			file.close()
			raise StartupError(
				f'the data folder {self.path.parent} is in use by another diffusiond (pid {holder}); stop that one, '
				'or give this one its own --data-dir'
			) from None
		except OSError as exc:
			file.close()
			raise StartupError(f'cannot lock the data folder {self.path.parent}: {exc.strerror}') from exc
		file.seek(0)
		file.truncate()
		file.write(f'{os.getpid()}\n')
		file.flush()
		self._file = file

	def release(self) -> None:
		if self._file is not None:
			fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
			self._file.close()
			self._file = None
