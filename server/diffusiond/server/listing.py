"""One way to list: the domain returns a window (the items at an offset and how many match), the services turn
offsets into opaque page tokens (services/paging.py). History alone pages by keyset, as records are added while
a client pages (history/book.py)."""

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar('T')


class Window(BaseModel, Generic[T]):
	items: list[T]
	offset: int
	total: int  # all matches, not only this window's

	@property
	def end(self) -> int:
		return self.offset + len(self.items)


def window(items: list[T], offset: int, limit: int) -> Window[T]:
	"""The window of a list filtered in memory."""
	return Window[T](items=items[offset : offset + limit], offset=offset, total=len(items))
