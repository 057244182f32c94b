"""Server interceptors. `ErrorInterceptor` is the one place where domain errors become gRPC statuses."""

from __future__ import annotations  # grpc-stubs generics (RpcMethodHandler[...]) are not subscriptable at runtime

import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import cast

import grpc
from grpc_status import rpc_status

from diffusiond.server.error_status import to_rpc_status
from diffusiond.server.errors import DiffusiondError

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[object, object]
# grpc-stubs type method handlers with the sync ServicerContext; grpc.aio passes its own context.
Handler = Callable[[object, grpc.ServicerContext], object]
UnaryBehaviour = Callable[[object, Context], Awaitable[object]]
StreamBehaviour = Callable[[object, Context], AsyncIterator[object]]
UploadHandler = Callable[[Iterator[object], grpc.ServicerContext], object]
UploadBehaviour = Callable[[AsyncIterator[object], Context], Awaitable[object]]


def as_handler_context(context: Context) -> grpc.ServicerContext:
	return cast(grpc.ServicerContext, context)


async def abort_with(context: Context, error: DiffusiondError) -> None:
	status = rpc_status.to_status(to_rpc_status(error))
	await context.abort(status.code, status.details, status.trailing_metadata)


async def _internal(context: Context, method: str, exc: Exception) -> None:
	log.exception('bug in %s', method, exc_info=exc)
	await context.abort(
		grpc.StatusCode.INTERNAL, f'internal error in {method} (logged by the daemon): {type(exc).__name__}'
	)


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
		await _internal(context, method, exc)


def _unary(method: str, behaviour: Handler) -> UnaryBehaviour:
	async def wrapped(request: object, context: Context) -> object:
		async with _statuses(context, method):
			result = behaviour(request, as_handler_context(context))
			return await result if inspect.isawaitable(result) else result
		return None  # unreachable: the error path aborts

	return wrapped


def _upload(method: str, behaviour: UploadHandler) -> UploadBehaviour:
	async def wrapped(requests: AsyncIterator[object], context: Context) -> object:
		async with _statuses(context, method):
			result = behaviour(cast(Iterator[object], requests), as_handler_context(context))
			return await result if inspect.isawaitable(result) else result
		return None  # unreachable: the error path aborts

	return wrapped


def _stream(method: str, behaviour: Handler) -> StreamBehaviour:
	async def wrapped(request: object, context: Context) -> AsyncIterator[object]:
		async with _statuses(context, method):
			result = behaviour(request, as_handler_context(context))
			if isinstance(result, AsyncGenerator):
				async with contextlib.aclosing(result) as events:
					async for event in events:
						yield event

	return wrapped


class ErrorInterceptor(grpc.aio.ServerInterceptor):
	"""Maps DiffusiondError (via error_status.STATUS_CODES) and unexpected exceptions to a gRPC status."""

	async def intercept_service(
		self,
		continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[object, object]]],
		handler_call_details: grpc.HandlerCallDetails,
	) -> grpc.RpcMethodHandler[object, object]:
		handler = await continuation(handler_call_details)
		method = handler_call_details.method
		if handler is None:
			return handler
		if handler.stream_unary is not None:  # an upload: a request iterator in, one response out
			return grpc.stream_unary_rpc_method_handler(
				_upload(method, handler.stream_unary), handler.request_deserializer, handler.response_serializer
			)
		if handler.request_streaming:
			return handler
		if handler.unary_stream is not None:
			# Streams come as async generators (ours) or as coroutines that call context.write (health Watch).
			stream = handler.unary_stream
			wrapped = _stream(method, stream) if inspect.isasyncgenfunction(stream) else _unary(method, stream)
			return grpc.unary_stream_rpc_method_handler(
				wrapped, handler.request_deserializer, handler.response_serializer
			)
		if handler.unary_unary is not None:
			return grpc.unary_unary_rpc_method_handler(
				_unary(method, handler.unary_unary), handler.request_deserializer, handler.response_serializer
			)
		return handler
