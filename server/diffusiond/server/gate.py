"""The gate in front of every RPC: the API token, and the refusal of new calls once shutdown began.

Health (Check and Watch) always passes, so orchestrators and load balancers need no token and see
NOT_SERVING during shutdown. The token is compared in constant time.
"""

from __future__ import annotations  # grpc-stubs generics (RpcMethodHandler[...]) are not subscriptable at runtime

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from diffusiond.server.errors import DiffusiondError, ShuttingDownError, TokenInvalidError, TokenMissingError
from diffusiond.server.interceptors import Context, abort_with
from diffusiond.server.listen import StartupError
from diffusiond.server.settings import EmptyTokenError, SecuritySettings

_OPEN_PREFIX = '/grpc.health.v1.Health/'
_BEARER = 'bearer '


def _token_of(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | bytes | None:
	for key, value in metadata or ():
		if key == 'authorization':
			return value
	return None


def _refusal(
	handler: grpc.RpcMethodHandler[object, object], error: DiffusiondError
) -> grpc.RpcMethodHandler[object, object]:
	"""A handler of the same kind as `handler` that answers `error` without running the method."""

	async def refuse(request: object, context: Context) -> object:
		await abort_with(context, error)
		return None

	async def refuse_stream(request: object, context: Context) -> AsyncIterator[object]:
		await abort_with(context, error)
		yield None

	serializers = (handler.request_deserializer, handler.response_serializer)
	if handler.unary_unary is not None:
		return grpc.unary_unary_rpc_method_handler(refuse, *serializers)
	if handler.unary_stream is not None:
		return grpc.unary_stream_rpc_method_handler(refuse_stream, *serializers)
	if handler.stream_unary is not None:
		return grpc.stream_unary_rpc_method_handler(refuse, *serializers)
	return grpc.stream_stream_rpc_method_handler(refuse_stream, *serializers)


async def _unknown(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
	yield b''  # never run: an unknown method reaches the gate only to be refused


# Raw bytes in and out: the shape of a method the server does not know, to refuse it before its kind is known.
_UNKNOWN_METHOD: grpc.RpcMethodHandler[object, object] = grpc.stream_stream_rpc_method_handler(_unknown)


class Gate(grpc.aio.ServerInterceptor):
	def __init__(self, token: str | None) -> None:
		self._token = token.encode() if token else None
		self.closed = False  # set when shutdown begins: new calls are refused, running ones go on

	@classmethod
	def from_settings(cls, security: SecuritySettings) -> Gate:
		try:
			return cls(security.api_token())
		except OSError as exc:
			raise StartupError(f'cannot read the API token file {security.token_file}: {exc.strerror}') from exc
		except EmptyTokenError as exc:
			raise StartupError(str(exc)) from exc

	@property
	def needs_token(self) -> bool:
		return self._token is not None

	def admits(self, given: str) -> bool:
		"""`given` is the token (constant-time compare), or none is needed; the HTTP gateway asks this too."""
		return self._token is None or hmac.compare_digest(given.encode(), self._token)

	def check(self, method: str, metadata: tuple[tuple[str, str | bytes], ...] | None) -> DiffusiondError | None:
		"""The error that refuses this call, or None when it may pass."""
		if method.startswith(_OPEN_PREFIX):
			return None
		if self.closed:
			return ShuttingDownError('the daemon is shutting down and takes no new calls; retry once it is back')
		if self._token is None:
			return None
		header = _token_of(metadata)
		if header is None:
			return TokenMissingError(
				'this daemon needs an API token: send the metadata `authorization: Bearer <token>` '
				'(diffusionctl --token or $DIFFUSIOND_TOKEN)'
			)
		text = header.decode(errors='replace') if isinstance(header, bytes) else header
		given = text[len(_BEARER) :].strip() if text.lower().startswith(_BEARER) else ''
		if not self.admits(given):
			return TokenInvalidError('the API token is wrong (expected `authorization: Bearer <token>`)')
		return None

	async def intercept_service(
		self,
		continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[object, object]]],
		handler_call_details: grpc.HandlerCallDetails,
	) -> grpc.RpcMethodHandler[object, object]:
		handler = await continuation(handler_call_details)
		error = self.check(handler_call_details.method, handler_call_details.invocation_metadata)
		if error is None:
			return handler
		# An unknown method is refused like a known one, so a caller without the token learns nothing of the API.
		return _refusal(handler or _UNKNOWN_METHOD, error)
