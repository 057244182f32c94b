"""Server interceptors. `ErrorInterceptor` is the one place where domain errors become gRPC statuses."""

from __future__ import annotations  # grpc-stubs generics (RpcMethodHandler[...]) are not subscriptable at runtime

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import cast

import grpc
from grpc_status import rpc_status

from diffusiond.server.error_status import domain_error_of, to_rpc_status
from diffusiond.server.errors import DiffusiondError, InternalError, ReaderStalledError
from diffusiond.server.request_guard import check_request, tolerant

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[object, object]
# grpc-stubs type method handlers with the sync ServicerContext; grpc.aio passes its own context.
Handler = Callable[[object, grpc.ServicerContext], object]
UnaryBehaviour = Callable[[object, Context], Awaitable[object]]
UploadHandler = Callable[[Iterator[object], grpc.ServicerContext], object]
UploadBehaviour = Callable[[AsyncIterator[object], Context], Awaitable[object]]
DuplexHandler = Callable[[Iterator[object], grpc.ServicerContext], object]
DuplexBehaviour = Callable[[AsyncIterator[object], Context], AsyncIterator[object]]


def as_handler_context(context: Context) -> grpc.ServicerContext:
	return cast(grpc.ServicerContext, context)


async def abort_with(context: Context, error: DiffusiondError) -> None:
	status = rpc_status.to_status(to_rpc_status(error))
	try:
		await context.abort(status.code, status.details, status.trailing_metadata)
	except grpc.aio.AbortError:
		raise
	except Exception as exc:  # the call is already gone (peer reset, server stopping): nobody to tell
		log.info('could not send %s (%s): %s', error.reason, type(exc).__name__, error.message)


async def _internal(context: Context, method: str, exc: Exception) -> None:
	log.exception('bug in %s', method, exc_info=exc)
	await abort_with(context, InternalError(f'internal error in {method} (logged by the daemon): {type(exc).__name__}'))


@contextlib.asynccontextmanager
async def _statuses(context: Context, method: str) -> AsyncIterator[None]:
	"""Answers a DiffusiondError with its status, anything unexpected with INTERNAL (logged)."""
	try:
		yield
	except DiffusiondError as error:
		await abort_with(context, error)
	except grpc.aio.AbortError:
		raise
	except Exception as exc:
		translated = domain_error_of(exc)
		if translated is None:
			await _internal(context, method, exc)
		else:
			await abort_with(context, translated)


def _unary(method: str, behaviour: Handler) -> UnaryBehaviour:
	async def wrapped(request: object, context: Context) -> object:
		async with _statuses(context, method):
			check_request(request)
			result = behaviour(request, as_handler_context(context))
			return await result if inspect.isawaitable(result) else result
		return None  # unreachable: the error path aborts

	return wrapped


async def _checked(requests: AsyncIterator[object]) -> AsyncIterator[object]:
	"""A request stream whose every message is checked before the handler takes it."""
	async for request in requests:
		check_request(request)
		yield request


def _upload(method: str, behaviour: UploadHandler) -> UploadBehaviour:
	async def wrapped(requests: AsyncIterator[object], context: Context) -> object:
		async with _statuses(context, method):
			result = behaviour(cast(Iterator[object], _checked(requests)), as_handler_context(context))
			return await result if inspect.isawaitable(result) else result
		return None  # unreachable: the error path aborts

	return wrapped


def _duplex(method: str, behaviour: DuplexHandler) -> DuplexBehaviour:
	"""Both ways streaming (reflection): checked requests in, the handler's messages out."""

	async def wrapped(requests: AsyncIterator[object], context: Context) -> AsyncIterator[object]:
		async with _statuses(context, method):
			result = behaviour(cast(Iterator[object], _checked(requests)), as_handler_context(context))
			if isinstance(result, AsyncIterator):
				async for response in result:
					yield response

	return wrapped


async def _write(context: Context, message: object, stall_s: float) -> None:
	"""Sends one message; a reader that takes nothing for `stall_s` seconds ends the call (never grows memory)."""
	try:
		async with asyncio.timeout(stall_s):
			await context.write(message)
	except TimeoutError:
		raise ReaderStalledError(
			f'the client read nothing for {stall_s:g}s, so the stream was closed; read the stream steadily '
			'(finished jobs are in history)'
		) from None


def _stream(method: str, behaviour: Handler, stall_s: float) -> UnaryBehaviour:
	"""Runs an async-generator handler, writing what it yields itself so that a stalled reader is noticed."""

	async def wrapped(request: object, context: Context) -> None:
		async with _statuses(context, method):
			check_request(request)
			result = behaviour(request, as_handler_context(context))
			if isinstance(result, AsyncGenerator):
				async with contextlib.aclosing(result) as events:
					async for event in events:
						await _write(context, event, stall_s)

	return wrapped


class ErrorInterceptor(grpc.aio.ServerInterceptor):
	"""Maps DiffusiondError (via error_status.STATUS_CODES) and unexpected exceptions to a gRPC status.

	Server streams are written here too, each message under `stall_s`: a reader that stops reading
	is cut (READER_STALLED) instead of holding its events on the server.
	"""

	def __init__(self, stall_s: float) -> None:
		self._stall_s = stall_s

	async def intercept_service(
		self,
		continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[object, object]]],
		handler_call_details: grpc.HandlerCallDetails,
	) -> grpc.RpcMethodHandler[object, object]:
		handler = await continuation(handler_call_details)
		method = handler_call_details.method
		if handler is None:
			return handler
		# Bytes that are no message of the request type reach the handler as Malformed: INVALID_ARGUMENT.
		serializers = (tolerant(handler.request_deserializer), handler.response_serializer)
		if handler.stream_unary is not None:  # an upload: a request iterator in, one response out
			return grpc.stream_unary_rpc_method_handler(_upload(method, handler.stream_unary), *serializers)
		if handler.stream_stream is not None:
			return grpc.stream_stream_rpc_method_handler(_duplex(method, handler.stream_stream), *serializers)
		if handler.unary_stream is not None:
			# Streams come as async generators (ours) or as coroutines that call context.write (health Watch).
			stream = handler.unary_stream
			wrapped = (
				_stream(method, stream, self._stall_s) if inspect.isasyncgenfunction(stream) else _unary(method, stream)
			)
			return grpc.unary_stream_rpc_method_handler(wrapped, *serializers)
		if handler.unary_unary is not None:
			return grpc.unary_unary_rpc_method_handler(_unary(method, handler.unary_unary), *serializers)
		return handler
