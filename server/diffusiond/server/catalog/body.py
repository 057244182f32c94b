"""Checks on what a download server sends: error pages are refused, names are taken safely."""

import email.message
import posixpath
import urllib.parse
from http.client import HTTPResponse
from pathlib import Path

from diffusiond.server.catalog.probe import HeaderError, read_header
from diffusiond.server.errors import (
	DiffusiondError,
	DownloadRefusedError,
	DownloadUnavailableError,
	FieldViolation,
	InvalidArgumentError,
	NotFoundError,
	UnauthenticatedError,
)

_TEXT_TYPES = ('text/html', 'application/json', 'text/plain', 'application/xml', 'text/xml', 'application/problem')
_TEXT_STARTS = (b'<!doctype', b'<html', b'<?xml', b'{"', b'{\n', b'{ ', b'[{', b'<head', b'<body')


def check_type(response: HTTPResponse) -> None:
	kind = (response.headers.get('Content-Type') or '').split(';')[0].strip().lower()
	if kind.startswith(_TEXT_TYPES):
		raise DownloadRefusedError(
			f'the server sent {kind} instead of a file (a login or error page?); check the URL and the token'
		)


def check_first_bytes(chunk: bytes) -> None:
	"""Refuses a body that starts like an HTML/JSON document: checkpoints are binary from byte one."""
	head = chunk[:64].lstrip().lower()
	if b'\x00' not in chunk[:64] and head.startswith(_TEXT_STARTS):
		raise DownloadRefusedError('the server sent a text document instead of a file (an error page?)')


def final_name(url: str, response: HTTPResponse) -> str:
	"""The file name from Content-Disposition, else from the final URL's path."""
	disposition = response.headers.get('Content-Disposition')
	if disposition:
		message = email.message.Message()
		message['content-disposition'] = disposition
		name = message.get_filename()
		if name:
			return posixpath.basename(name.replace('\\', '/'))
	name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(response.geturl() or url).path))
	if not name or '.' not in name:
		raise InvalidArgumentError(
			[FieldViolation(field='file_name', description=f'no file name in {url}; give file_name explicitly')]
		)
	return name


def verify_header(part: Path, target: Path) -> None:
	"""A .safetensors download must have a readable header; a broken one is discarded."""
	if target.suffix.lower() != '.safetensors':
		return
	try:
		read_header(part)
	except (OSError, HeaderError) as exc:
		raise DownloadRefusedError(f'the file is not valid safetensors ({exc}); it was discarded') from exc


def http_error(code: int, reason: str, url: str) -> DiffusiondError:
	"""The domain error for an HTTP error status from a download server."""
	host = urllib.parse.urlsplit(url).hostname
	if code in (401, 403):
		return UnauthenticatedError(
			f'{host} refused the download ({code} {reason}); set a token for it in '
			'DIFFUSIOND_DOWNLOADS__TOKENS, e.g. {"' + str(host) + '": "<token>"}'
		)
	if code == 404:
		return NotFoundError(f'{url} does not exist (404)')
	if code >= 500 or code == 429:
		return DownloadUnavailableError(f'{host} answered {code} {reason}; retry later')
	return DownloadRefusedError(f'{host} answered {code} {reason} for {url}')
