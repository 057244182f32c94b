"""Column types that never fail a read: a value an old or hand-edited database holds in a form the driver
cannot parse (a date that is no date, JSON that is no JSON) reads as None and is logged, so one damaged
field degrades only itself (the row readers then use that field's default)."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)
_UNREADABLE = (ValueError, TypeError, OverflowError)


def _ignored(kind: str, value: object, exc: Exception) -> None:
	log.warning('a stored %s could not be read (%s: %.80r); it is ignored', kind, type(exc).__name__, value)


class StoredTime(TypeDecorator[datetime]):
	impl = DateTime(timezone=True)
	cache_ok = True

	def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[object], datetime | None]:
		inner = self.impl_instance.result_processor(dialect, coltype)

		def process(value: object) -> datetime | None:
			try:
				result = inner(value) if inner is not None else value
			except _UNREADABLE as exc:
				_ignored('time', value, exc)
				return None
			if not isinstance(result, datetime):
				return None
			return result if result.tzinfo is not None else result.replace(tzinfo=UTC)  # SQLite keeps no zone

		return process


class StoredJSON(TypeDecorator[object]):
	impl = JSON
	cache_ok = True

	def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[object], object | None]:
		inner = self.impl_instance.result_processor(dialect, coltype)

		def process(value: object) -> object | None:
			try:
				return inner(value) if inner is not None else value
			except _UNREADABLE as exc:
				_ignored('JSON value', value, exc)
				return None

		return process
