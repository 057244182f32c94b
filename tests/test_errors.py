"""Error contract: every reason is documented for client authors, and a bug still answers with details."""

from pathlib import Path

import grpc
import pytest

from diffusiond.server import errors
from diffusiond.server.interceptors import ErrorInterceptor
from tests.helpers import error_details

README = Path(__file__).resolve().parents[1] / 'README.md'


def _reasons(cls: type[errors.DiffusiondError]) -> set[str]:
	found = {cls.reason}
	for sub in cls.__subclasses__():
		found |= _reasons(sub)
	return found


def test_every_reason_is_in_the_readme_table() -> None:
	text = README.read_text()
	table = text[text.index('### Errors') : text.index('### grpcurl')]
	missing = sorted(reason for reason in _reasons(errors.DiffusiondError) - {'ERROR'} if f'`{reason}`' not in table)
	assert not missing, f'reasons missing from the README error table: {missing}'


async def _buggy(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
	raise KeyError('a bug')


async def test_a_bug_answers_internal_with_error_info() -> None:
	server = grpc.aio.server(interceptors=[ErrorInterceptor(1.0)])
	handler = grpc.unary_unary_rpc_method_handler(_buggy)
	server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler('test.Buggy', {'Boom': handler})])
	port = server.add_insecure_port('127.0.0.1:0')
	await server.start()
	try:
		async with grpc.aio.insecure_channel(f'127.0.0.1:{port}') as chan:
			with pytest.raises(grpc.aio.AioRpcError) as caught:
				await chan.unary_unary('/test.Buggy/Boom', None, None)(b'')
	finally:
		await server.stop(0)
	assert caught.value.code() == grpc.StatusCode.INTERNAL
	assert error_details(caught.value)[0].reason == 'INTERNAL'
	assert 'KeyError' in str(caught.value.details())
