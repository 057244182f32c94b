"""`translate_errors`: every public method of a client class raises DiffusiondError, never grpc.RpcError."""

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import ParamSpec, TypeVar

import grpc

from diffusiond.client.errors import from_rpc_error

P = ParamSpec('P')
R = TypeVar('R')
T = TypeVar('T')


def _call(fn: Callable[P, R]) -> Callable[P, R]:
	@functools.wraps(fn)
	def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
		try:
			return fn(*args, **kwargs)
		except grpc.RpcError as error:
			raise from_rpc_error(error) from error

	return wrapped


def _iterate(fn: Callable[P, Iterator[R]]) -> Callable[P, Iterator[R]]:
	@functools.wraps(fn)
	def wrapped(*args: P.args, **kwargs: P.kwargs) -> Iterator[R]:
		try:
			yield from fn(*args, **kwargs)
		except grpc.RpcError as error:
			raise from_rpc_error(error) from error

	return wrapped


def _await(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[object, object, R]]:
	@functools.wraps(fn)
	async def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
		try:
			return await fn(*args, **kwargs)
		except grpc.RpcError as error:
			raise from_rpc_error(error) from error

	return wrapped


def _aiterate(fn: Callable[P, AsyncIterator[R]]) -> Callable[P, AsyncIterator[R]]:
	@functools.wraps(fn)
	async def wrapped(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[R]:
		try:
			async for item in fn(*args, **kwargs):
				yield item
		except grpc.RpcError as error:
			raise from_rpc_error(error) from error

	return wrapped


def translate_errors(cls: type[T]) -> type[T]:
	"""Wraps every public method (plain, generator, coroutine, async generator) of `cls` and its mixins."""
	for name, method in inspect.getmembers(cls, inspect.isfunction):
		if name.startswith('_'):
			continue
		if inspect.isasyncgenfunction(method):
			setattr(cls, name, _aiterate(method))
		elif inspect.iscoroutinefunction(method):
			setattr(cls, name, _await(method))
		elif inspect.isgeneratorfunction(method):
			setattr(cls, name, _iterate(method))
		else:
			setattr(cls, name, _call(method))
	return cls
