"""Transfer rate and ETA over a sliding window, reported at most a few times a second."""

import time
from collections import deque

WINDOW_S = 3.0
REPORT_EVERY_S = 0.25


class RateMeter:
	def __init__(self, start_bytes: int) -> None:
		now = time.monotonic()
		self._samples: deque[tuple[float, int]] = deque([(now, start_bytes)])
		self._last_report = 0.0

	def due(self) -> bool:
		now = time.monotonic()
		if now - self._last_report < REPORT_EVERY_S:
			return False
		self._last_report = now
		return True

	def rate(self, size: int, total: int) -> tuple[float, float]:
		"""Bytes per second over the window, and seconds to go (0 if the total is unknown)."""
		now = time.monotonic()
		self._samples.append((now, size))
		while len(self._samples) > 2 and now - self._samples[0][0] > WINDOW_S:
			self._samples.popleft()
		began, first = self._samples[0]
		rate = (size - first) / (now - began) if now > began else 0.0
		eta = (total - size) / rate if total and rate > 0 else 0.0
		return rate, eta
