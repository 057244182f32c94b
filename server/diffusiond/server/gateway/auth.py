"""The daemon's token over HTTP: `Authorization: Bearer <token>`, or HTTP basic auth with the token as the password
(A1111's `--api-auth user:password` form, as webuiapi's `set_auth` sends it). Draining refuses new requests."""

import base64
import binascii

from fastapi import Request

from diffusiond.server.errors import ShuttingDownError, TokenInvalidError, TokenMissingError
from diffusiond.server.gate import Gate


def _given(header: str) -> str:
	scheme, _, value = header.partition(' ')
	if scheme.lower() == 'bearer':
		return value.strip()
	if scheme.lower() == 'basic':
		try:
			return base64.b64decode(value.strip(), validate=True).decode().partition(':')[2]
		except (binascii.Error, UnicodeDecodeError):
			return ''
	return ''


def check_request(gate: Gate, request: Request) -> None:
	if gate.closed:
		raise ShuttingDownError('the daemon is shutting down and takes no new requests; retry once it is back')
	if not gate.needs_token:
		return
	header = request.headers.get('authorization')
	if header is None:
		raise TokenMissingError(
			'this daemon needs an API token: send `Authorization: Bearer <token>`, or HTTP basic auth with the '
			'token as the password'
		)
	if not gate.admits(_given(header)):
		raise TokenInvalidError('the API token is wrong (Bearer <token>, or basic auth with the token as password)')
