"""Per-job event channel from the worker thread to every asyncio stream that follows the job.

The worker thread calls `publish` / `fail` (thread-safe, via `loop.call_soon_threadsafe`). Each reader
holds a `Subscription`: the Generate call that created the job, and any WatchJob call that attached
later. Progress, preview and queue position events are latest-wins per subscription: an unread one is
replaced by the next of its kind, so a slow reader never stalls the device and memory stays bounded.
Images and the terminal event are never dropped. A late subscriber first gets the job's state so far
(where it is queued, or its start, latest progress and preview, and the images already made).
"""

import asyncio
import collections
from collections.abc import AsyncIterator

from diffusiond.server.errors import DiffusiondError
from diffusiond.server.events import (
	CompletedEvent,
	ImageEvent,
	JobEvent,
	PreviewEvent,
	ProgressEvent,
	QueuedEvent,
	StageEvent,
	StartedEvent,
)

_COALESCED = (ProgressEvent, PreviewEvent, QueuedEvent)


class Subscription:
	"""One reader's queue of events (loop-only)."""

	def __init__(self) -> None:
		self._pending: collections.deque[JobEvent] = collections.deque()
		self._error: DiffusiondError | None = None
		self._closed = False
		self._wakeup = asyncio.Event()
		self.dropped = 0

	def put(self, event: JobEvent) -> None:
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


class EventChannel:
	def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
		self._loop = loop
		self._subscribers: list[Subscription] = []
		self._queued: QueuedEvent | None = None
		self._started: StartedEvent | None = None
		self._latest: dict[type, JobEvent] = {}  # progress and preview
		self._images: list[ImageEvent] = []
		self._end: CompletedEvent | DiffusiondError | None = None
		self.primary = self.subscribe()  # the caller that created the job

	def publish(self, event: JobEvent) -> None:
		"""Thread-safe: hands `event` to the loop."""
		self._loop.call_soon_threadsafe(self.put, event)

	def fail(self, error: DiffusiondError) -> None:
		"""Thread-safe: ends every subscription with `error`."""
		self._loop.call_soon_threadsafe(self.put_error, error)

	def put(self, event: JobEvent) -> None:
		"""Loop-only."""
		if self._end is not None:
			return
		match event:
			case QueuedEvent():
				self._queued = event
			case StartedEvent():
				self._started = event
			case ProgressEvent() | PreviewEvent() | StageEvent():
				self._latest[type(event)] = event
			case ImageEvent():
				self._images.append(event)
			case CompletedEvent():
				self._end = event
		for subscriber in self._subscribers:
			subscriber.put(event)

	def put_error(self, error: DiffusiondError) -> None:
		"""Loop-only."""
		if self._end is not None:
			return
		self._end = error
		for subscriber in self._subscribers:
			subscriber.put_error(error)

	def subscribe(self) -> Subscription:
		"""Loop-only: a new reader, first given the job's state so far."""
		subscription = Subscription()
		replay: list[JobEvent] = []
		if self._started is not None:
			replay += [self._started, *self._latest.values(), *self._images]
		elif self._queued is not None:
			replay.append(self._queued)
		for event in replay:
			subscription.put(event)
		if isinstance(self._end, CompletedEvent):
			subscription.put(self._end)
		elif self._end is not None:
			subscription.put_error(self._end)
		self._subscribers.append(subscription)
		return subscription

	def unsubscribe(self, subscription: Subscription) -> None:
		"""Loop-only: a reader went away."""
		if subscription in self._subscribers:
			self._subscribers.remove(subscription)

	def events(self) -> AsyncIterator[JobEvent]:
		return self.primary.events()

	@property
	def dropped(self) -> int:
		return self.primary.dropped

	def latest_progress(self) -> ProgressEvent | None:
		"""Loop-only: the last progress event (A1111's /progress reads it)."""
		found = self._latest.get(ProgressEvent)
		return found if isinstance(found, ProgressEvent) else None

	def latest_preview(self) -> PreviewEvent | None:
		found = self._latest.get(PreviewEvent)
		return found if isinstance(found, PreviewEvent) else None
