"""Reading stored rows one field at a time: a value that breaks its field's rules becomes that field's
fallback and is logged (once per row shape), so an old or hand-edited database degrades only the damaged
field, never a listing, a lookup or the daemon's start."""

import enum
import functools
import logging
import math
from datetime import UTC, datetime
from typing import TypeVar

log = logging.getLogger(__name__)
E = TypeVar('E', bound=enum.Enum)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT64 = 2**63 - 1


@functools.lru_cache(maxsize=256)
def _warn_once(what: str, fields: tuple[str, ...]) -> None:
	log.warning('%s: stored %s damaged; read as the default(s)', what, ', '.join(fields))


class RowReader:
	def __init__(self, what: str) -> None:
		self.what = what
		self.damaged: list[str] = []

	def _bad(self, field: str) -> None:
		self.damaged.append(field)

	def any_of(self, fields: set[str]) -> bool:
		"""Whether one of `fields` was damaged (so far)."""
		return any(field in fields for field in self.damaged)

	def done(self) -> None:
		if self.damaged:
			_warn_once(self.what, tuple(self.damaged))

	def member(self, field: str, cls: type[E], value: object, fallback: E) -> E:
		"""An enum member by value (the stored form of most enums)."""
		try:
			return cls(value)
		except ValueError:
			self._bad(field)
			return fallback

	def named(self, field: str, cls: type[E], value: object) -> E | None:
		"""An enum member by name (None stays None)."""
		if value is None:
			return None
		if isinstance(value, str) and value in cls.__members__:
			return cls[value]
		self._bad(field)
		return None

	def integer(self, field: str, value: object, low: int, high: int, fallback: int) -> int:
		found = self.optional_integer(field, value, low, high)
		return fallback if found is None else found

	def optional_integer(self, field: str, value: object, low: int, high: int) -> int | None:
		if value is None:
			return None
		if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
			return value
		self._bad(field)
		return None

	def number(self, field: str, value: object, low: float, high: float, fallback: float) -> float:
		found = self.optional_number(field, value, low, high)
		return fallback if found is None else found

	def optional_number(self, field: str, value: object, low: float, high: float) -> float | None:
		if value is None:
			return None
		if isinstance(value, int | float) and not isinstance(value, bool):
			number = float(value)
			if math.isfinite(number) and low <= number <= high:
				return number
		self._bad(field)
		return None

	def text(self, field: str, value: object, fallback: str = '') -> str:
		if isinstance(value, str):
			return value
		self._bad(field)
		return fallback

	def words(self, field: str, value: object) -> list[str]:
		return self.optional_words(field, value) or []

	def optional_words(self, field: str, value: object) -> list[str] | None:
		if value is None:
			return None
		if isinstance(value, list) and all(isinstance(item, str) for item in value):
			return [str(item) for item in value]
		self._bad(field)
		return []

	def time(self, field: str, value: object, fallback: datetime = EPOCH) -> datetime:
		found = self.optional_time(field, value)
		return fallback if found is None else found

	def optional_time(self, field: str, value: object) -> datetime | None:
		if isinstance(value, datetime):
			return value
		if value is not None:
			self._bad(field)
		return None
