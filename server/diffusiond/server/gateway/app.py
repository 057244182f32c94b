"""The FastAPI application: both APIs behind the token, request bodies capped like gRPC requests, every domain
error and every malformed body answered through the error table (never a traceback), OpenAPI docs at /docs."""

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diffusiond.server import __version__
from diffusiond.server.errors import DiffusiondError, FieldViolation, InvalidArgumentError, RequestTooLargeError
from diffusiond.server.gateway.a1111_lists import a1111_lists
from diffusiond.server.gateway.a1111_routes import a1111_routes
from diffusiond.server.gateway.auth import check_request
from diffusiond.server.gateway.context import Gateway
from diffusiond.server.gateway.errors import error_response
from diffusiond.server.gateway.openai_routes import openai_routes


class BodyCap:
	"""413 for a body over `limit` bytes, from Content-Length or as it streams in (chunked uploads): the body is read
	here, up to the limit, and handed on whole."""

	def __init__(self, app: ASGIApp, limit: int) -> None:
		self._app = app
		self._limit = limit

	def _error(self) -> RequestTooLargeError:
		return RequestTooLargeError(
			f'the request body is over {self._limit} bytes (server.max_receive_bytes): send a smaller image',
			metadata={'max_bytes': str(self._limit)},
		)

	async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
		if scope['type'] != 'http':
			await self._app(scope, receive, send)
			return
		declared = dict(scope['headers']).get(b'content-length', b'0')
		if declared.isdigit() and int(declared) > self._limit:
			await error_response(Request(scope), self._error())(scope, receive, send)
			return
		body, more = bytearray(), True
		while more:  # read before the app sees any of it: an oversized stream never reaches a parser
			message = await receive()
			if message['type'] != 'http.request':
				break
			body += message.get('body', b'')
			more = bool(message.get('more_body', False))
			if len(body) > self._limit:
				await error_response(Request(scope), self._error())(scope, receive, send)
				return
		replayed = False

		async def replay() -> Message:
			nonlocal replayed
			if not replayed:
				replayed = True
				return {'type': 'http.request', 'body': bytes(body), 'more_body': False}
			return await receive()

		await self._app(scope, replay, send)


def _violations(error: RequestValidationError) -> InvalidArgumentError:
	found = []
	for item in error.errors():
		location = [str(part) for part in item.get('loc', ()) if part != 'body']
		found.append(FieldViolation(field='.'.join(location) or 'body', description=str(item.get('msg', 'invalid'))))
	return InvalidArgumentError(found or [FieldViolation(field='body', description='the body is not valid JSON')])


def build_app(gateway: Gateway) -> FastAPI:
	async def authorized(request: Request) -> None:
		check_request(gateway.gate, request)

	app = FastAPI(title='diffusiond HTTP gateway', version=__version__, dependencies=[Depends(authorized)])
	app.include_router(a1111_routes(gateway), prefix='/sdapi/v1')
	app.include_router(a1111_lists(gateway), prefix='/sdapi/v1')
	app.include_router(openai_routes(gateway), prefix='/v1')

	async def domain(request: Request, exc: Exception) -> Response:
		error = exc if isinstance(exc, DiffusiondError) else InvalidArgumentError([])
		return error_response(request, error)

	async def invalid(request: Request, exc: Exception) -> Response:
		error = _violations(exc) if isinstance(exc, RequestValidationError) else InvalidArgumentError([])
		return error_response(request, error)

	handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
		DiffusiondError: domain,
		RequestValidationError: invalid,
	}
	for kind, handler in handlers.items():
		app.add_exception_handler(kind, handler)
	return app


def with_body_cap(app: FastAPI, limit: int) -> ASGIApp:
	return BodyCap(app, limit)
