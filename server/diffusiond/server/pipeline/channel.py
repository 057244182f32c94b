"""Per-job event channel from the worker thread to the asyncio stream(s) that read it.

The worker thread calls `publish` (thread-safe, via `loop.call_soon_threadsafe`). Progress, preview and
queue position events are latest-wins: an unread one is replaced by the next of its kind, so a slow reader
never stalls the device and memory stays bounded. Images and the terminal event are never dropped.
"""

import asyncio
import collections
from collections.abc import AsyncIterator

from diffusiond.server.errors import DiffusiondError
from diffusiond.server.schemas import CompletedEvent, JobEvent, PreviewEvent, ProgressEvent, QueuedEvent

_COALESCED = (ProgressEvent, PreviewEvent, QueuedEvent)


class EventChannel:
	def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
		self._loop = loop
		self._pending: collections.deque[JobEvent] = collections.deque()
		self._error: DiffusiondError | None = None
		self._closed = False
		self._wakeup = asyncio.Event()
		self.dropped = 0

	def publish(self, event: JobEvent) -> None:
		"""Thread-safe: hands `event` to the loop."""
		self._loop.call_soon_threadsafe(self.put, event)

	def fail(self, error: DiffusiondError) -> None:
		"""Thread-safe: ends the stream with `error`."""
		self._loop.call_soon_threadsafe(self.put_error, error)

	def put(self, event: JobEvent) -> None:
		"""Loop-only."""
		if self._closed:
			return
		if isinstance(event, _COALESCED):
			self._drop_older(type(event))
		self._pending.append(event)
		if isinstance(event, CompletedEvent):
			self._closed = True
		self._wakeup.set()

	def _drop_older(self, kind: type) -> None:
		"""Removes an unread event of `kind` from the trailing run of latest-wins events (at most one is there)."""
		for index in range(len(self._pending) - 1, -1, -1):
			pending = self._pending[index]
			if not isinstance(pending, _COALESCED):
				return
			if type(pending) is kind:
				del self._pending[index]
				self.dropped += 1
				return

	def put_error(self, error: DiffusiondError) -> None:
		"""Loop-only."""
		if self._closed:
			return
		self._error = error
		self._closed = True
		self._wakeup.set()

	async def events(self) -> AsyncIterator[JobEvent]:
		"""Yields events until the terminal one; raises the job's error if it failed."""
		while True:
			while self._pending:
				yield self._pending.popleft()
			if self._closed:
				if self._error is not None:
					raise self._error
				return
			self._wakeup.clear()
			await self._wakeup.wait()
