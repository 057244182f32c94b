"""Reading every page of a List call: `fetch(token)` returns one page's items and the next token."""

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar('T')


def all_pages(fetch: Callable[[str], tuple[Iterable[T], str]]) -> list[T]:
	items: list[T] = []
	token = ''
	while True:
		page, token = fetch(token)
		items.extend(page)
		if not token:
			return items


async def all_pages_async(fetch: Callable[[str], Awaitable[tuple[Iterable[T], str]]]) -> list[T]:
	items: list[T] = []
	token = ''
	while True:
		page, token = await fetch(token)
		items.extend(page)
		if not token:
			return items
