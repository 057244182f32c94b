"""AIP-158 paging: page_size rules, and opaque page tokens for the domain's offset windows (listing.py)."""

import base64
import binascii
from typing import TypeVar

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.listing import Window

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


def next_token(found: Window[T]) -> str:
	"""The token of the page after `found` ('' at the end)."""
	return encode_token(found.end) if found.end < found.total else ''
