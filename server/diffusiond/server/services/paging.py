"""AIP-158 paging over in-memory lists: page_size rules and opaque page tokens."""

import base64
import binascii
from typing import TypeVar

from diffusiond.server.errors import FieldViolation, InvalidArgumentError

T = TypeVar('T')
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_OFFSET_DIGITS = 9  # a billion rows: far past any list, and inside every database's integer range


def _invalid(field: str, description: str) -> InvalidArgumentError:
	return InvalidArgumentError([FieldViolation(field=field, description=description)])


MAX_FILTER_CHARS = 500


def filter_text(value: str, field: str) -> str:
	"""A search or filter string, refused when longer than MAX_FILTER_CHARS."""
	if len(value) > MAX_FILTER_CHARS:
		raise _invalid(field, f'{field} is at most {MAX_FILTER_CHARS} characters, got {len(value)}')
	return value


def page_size(requested: int) -> int:
	if requested < 0:
		raise _invalid('page_size', f'page_size must be >= 0 (0 = {DEFAULT_PAGE_SIZE}), got {requested}')
	return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(offset: int) -> str:
	return base64.urlsafe_b64encode(f'offset:{offset}'.encode()).decode()


def decode_token(token: str) -> int:
	if not token:
		return 0
	try:
		kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(':')
		if kind == 'offset' and value.isascii() and value.isdigit() and len(value) <= MAX_OFFSET_DIGITS:
			return int(value)
	except (binascii.Error, UnicodeDecodeError, ValueError):
		pass
	raise _invalid('page_token', 'page_token is not a token from a previous response; send it back unchanged')


def page(items: list[T], size: int, token: str) -> tuple[list[T], str]:
	"""One page of `items` and the token of the next page ('' at the end)."""
	start = decode_token(token)
	chunk = items[start : start + page_size(size)]
	end = start + len(chunk)
	return chunk, encode_token(end) if end < len(items) else ''
