"""Every enum field of every request of every service, nested ones included, refuses a number its enum does
not define with INVALID_ARGUMENT naming the field; bytes that are no message are INVALID_ARGUMENT too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from diffusiond.server.request_guard import enum_violations
from diffusiond.server.rpc import SERVICES
from diffusiond.v1 import generation_service_pb2 as gen_pb
from tests.conftest import StartDaemon
from tests.helpers import error_details

METHODS = [method for service in SERVICES for method in service.methods]


def _enum_paths(descriptor: Descriptor, seen: tuple[str, ...] = ()) -> Iterator[list[FieldDescriptor]]:
	"""Every way down to an enum field from `descriptor` (each message type at most once per path)."""
	for field in descriptor.fields:
		if field.type == FieldDescriptor.TYPE_ENUM:
			yield [field]
		elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
			inner = field.message_type
			if inner.full_name in seen or inner.full_name.startswith('google.protobuf.'):
				continue
			for rest in _enum_paths(inner, (*seen, descriptor.full_name)):
				yield [field, *rest]


def _with_unknown(message: Message, path: list[FieldDescriptor], number: int) -> str:
	"""Sets the enum at the end of `path` to `number` (adding one element to repeated fields, a key to maps);
	returns the field path the daemon should name."""
	names: list[str] = []
	target = message
	for index, field in enumerate(path):
		last = index == len(path) - 1
		container = getattr(target, field.name)
		entry = field.message_type
		if entry is not None and entry.GetOptions().map_entry:
			value_field = entry.fields_by_name['value']
			names.append(f"{field.name}['k']")
			if last or value_field.type == FieldDescriptor.TYPE_ENUM:
				container['k'] = number
				return '.'.join(names)
			target = container['k']
		elif field.is_repeated:
			names.append(f'{field.name}[0]')
			if last:
				container.append(number)
				return '.'.join(names)
			target = container.add()
		else:
			names.append(field.name)
			if last:
				setattr(target, field.name, number)
				return '.'.join(names)
			target = container
	raise AssertionError('the path ends in an enum')


CASES = [
	(method, path, number) for method in METHODS for path in _enum_paths(method.input_type) for number in (9999, -1)
]


def test_there_are_enums_to_check() -> None:
	named = {f'{method.name}.{".".join(field.name for field in path)}' for method, path, _ in CASES}
	for expected in ('Generate.sampler', 'Generate.output_format', 'ListModels.base', 'ListModels.format'):
		assert expected in named
	assert 'BatchUpdateLoras.action' in named or any(name.startswith('BatchUpdateLoras.') for name in named)


def test_known_values_pass_the_check() -> None:
	request = gen_pb.GenerateRequest(sampler=gen_pb.SAMPLER_EULER_A, output_format=gen_pb.IMAGE_FORMAT_WEBP)
	assert enum_violations(request) == []


@pytest.mark.parametrize(
	('method', 'path', 'number'),
	CASES,
	ids=[f'{m.name}.{".".join(f.name for f in p)}={n}' for m, p, n in CASES],
)
async def test_an_unknown_enum_number_is_invalid_argument_naming_the_field(
	start_fake: StartDaemon, method: MethodDescriptor, path: list[FieldDescriptor], number: int
) -> None:
	daemon = await start_fake()
	request = message_factory.GetMessageClass(method.input_type)()
	field = _with_unknown(request, path, number)
	error = await _call(daemon.port, method, request.SerializeToString())
	assert error is not None, f'{method.name} accepted {field}={number}'
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
	assert error_details(error)[1] == [field]
	assert str(number) in str(error.details())


@pytest.mark.parametrize('method', METHODS, ids=[m.name for m in METHODS])
async def test_bytes_that_are_no_message_are_invalid_argument(
	start_fake: StartDaemon, method: MethodDescriptor
) -> None:
	daemon = await start_fake()
	error = await _call(daemon.port, method, b'\xff\xff\xff\xff\x0f')
	assert error is not None
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
	assert 'not a valid message' in str(error.details())


async def _call(port: int, method: MethodDescriptor, data: bytes) -> grpc.aio.AioRpcError | None:
	"""Sends raw request bytes to `method`; the error it answered, None on success."""
	path = f'/{method.containing_service.full_name}/{method.name}'
	async with grpc.aio.insecure_channel(f'127.0.0.1:{port}') as chan:
		try:
			if method.client_streaming:
				await chan.stream_unary(path, None, None)(_once(data), timeout=30)
			elif method.server_streaming:
				async for _ in chan.unary_stream(path, None, None)(data, timeout=30):
					pass
			else:
				await chan.unary_unary(path, None, None)(data, timeout=30)
		except grpc.aio.AioRpcError as error:
			return error
	return None


async def _once(data: bytes) -> AsyncIterator[bytes]:
	yield data
