"""The body of a download: written to the partial file chunk by chunk, with rate, ETA and limits."""

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from http.client import HTTPResponse
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.catalog.body import check_first_bytes
from diffusiond.server.errors import (
	DownloadCancelledError,
	DownloadRefusedError,
	DownloadTooLargeError,
)
from diffusiond.server.settings import DownloadSettings

CHUNK_BYTES = 1024 * 1024

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


class DownloadProgress(BaseModel):
	bytes: int
	total_bytes: int
	bytes_per_second: float = 0.0
	eta_seconds: float = 0.0
	resumed_from: int = 0
	phase: str = 'downloading'


class Transfer(BaseModel):
	resumed: int  # bytes of the partial file kept (a Range resume), 0 for a fresh start
	total: int  # the whole file, 0 if the server did not say


Report = Callable[[DownloadProgress], None]


def expected_total(response: HTTPResponse, resumed: int, limits: DownloadSettings) -> int:
	length = int(response.headers.get('Content-Length') or 0)
	total = resumed + length if length else 0
	if total > limits.max_bytes:
		raise DownloadTooLargeError(f'the file is {total} bytes, over the {limits.max_bytes}-byte limit')
	if total and total < limits.min_bytes:
		raise DownloadRefusedError(f'the server sent {total} bytes, far too few for a checkpoint (an error page?)')
	return total


def receive(
	response: HTTPResponse,
	part: Path,
	transfer: Transfer,
	limits: DownloadSettings,
	cancel: threading.Event,
	report: Report,
) -> None:
	"""Appends the body to `part` from `transfer.resumed`; stops on `cancel`, the size cap, or a short body."""
	resumed, total = transfer.resumed, transfer.total
	meter = RateMeter(resumed)
	size = resumed
	with part.open('r+b' if resumed else 'wb') as file:
		file.seek(resumed)
		file.truncate()
		while chunk := response.read1(CHUNK_BYTES):
			if cancel.is_set():
				raise DownloadCancelledError(f'download cancelled after {size} bytes; the partial file is kept')
			if size == resumed == 0:
				check_first_bytes(chunk)
			size += len(chunk)
			if size > limits.max_bytes:
				raise DownloadTooLargeError(f'the download passed the {limits.max_bytes}-byte limit')
			file.write(chunk)
			if meter.due():
				rate, eta = meter.rate(size, total)
				report(
					DownloadProgress(
						bytes=size, total_bytes=total, bytes_per_second=rate, eta_seconds=eta, resumed_from=resumed
					)
				)
		file.flush()
		os.fsync(file.fileno())
	if total and size != total:
		raise ConnectionError(f'the connection closed after {size} of {total} bytes')  # download.py says what next
	if size < limits.min_bytes:
		raise DownloadRefusedError(f'the server sent {size} bytes, far too few for a checkpoint (an error page?)')
