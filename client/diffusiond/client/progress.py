"""A step progress bar on stderr: redrawn in place on a terminal, plain lines otherwise."""

import sys
from typing import TextIO

_WIDTH = 30


class ProgressBar:
	def __init__(self, stream: TextIO | None = None) -> None:
		self._stream = stream or sys.stderr
		self._tty = self._stream.isatty()
		self._last_decile = -1

	def update(self, step: int, total: int, eta_s: float) -> None:
		self._draw(step / total if total else 1.0, f'step {step}/{total}  ETA {eta_s:5.1f}s')

	def transfer(self, done: int, total: int, rate: float, eta_s: float) -> None:
		"""A download: bytes so far of the total (0 = unknown), rate in bytes/s."""
		mib = 1 << 20
		sized = f'{done / mib:.1f}/{total / mib:.1f} MiB' if total else f'{done / mib:.1f} MiB'
		self._draw(done / total if total else 0.0, f'{sized}  {rate / mib:.1f} MiB/s  ETA {eta_s:5.1f}s')

	def _draw(self, fraction: float, text: str) -> None:
		if self._tty:
			filled = int(fraction * _WIDTH)
			self._stream.write(f'\r[{"#" * filled}{"." * (_WIDTH - filled)}] {text}')
			self._stream.flush()
		elif int(fraction * 10) > self._last_decile:
			self._last_decile = int(fraction * 10)
			self._stream.write(f'{text}\n')

	def message(self, text: str) -> None:
		self.finish()
		self._stream.write(f'{text}\n')

	def finish(self) -> None:
		if self._tty:
			self._stream.write('\r\033[K')
			self._stream.flush()
