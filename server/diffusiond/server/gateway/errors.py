"""Domain errors as HTTP answers: the status from the one table (error_status.py), the body in the shape the
client expects — A1111's (`error`, `detail`, `body`, `errors`) under /sdapi, OpenAI's (`error.message`, `type`,
`param`, `code`) under /v1 — and Retry-After where waiting helps."""

from fastapi import Request
from fastapi.responses import JSONResponse

from diffusiond.server.error_status import http_status_for
from diffusiond.server.errors import DiffusiondError, InvalidArgumentError, ResourceExhaustedError

OPENAI_PREFIX = '/v1/'


def _openai_type(status: int) -> str:
	return {401: 'authentication_error', 404: 'not_found_error', 429: 'rate_limit_error'}.get(
		status, 'invalid_request_error' if status < 500 else 'server_error'
	)


def _field(error: DiffusiondError) -> str | None:
	if isinstance(error, InvalidArgumentError) and error.violations:
		return error.violations[0].field
	return None


def error_response(request: Request, error: DiffusiondError) -> JSONResponse:
	status = http_status_for(error)
	headers = {'WWW-Authenticate': 'Bearer, Basic realm="diffusiond"'} if status == 401 else {}
	wait = error.retry_after_s if isinstance(error, ResourceExhaustedError) else None
	if wait is not None:
		headers['Retry-After'] = str(max(1, round(wait)))
	if request.url.path.startswith(OPENAI_PREFIX):
		body: dict[str, object] = {
			'error': {
				'message': error.message,
				'type': _openai_type(status),
				'param': _field(error),
				'code': error.reason,
			}
		}
	else:
		violations = error.violations if isinstance(error, InvalidArgumentError) else []
		fields = [{'field': item.field, 'description': item.description} for item in violations]
		body = {'error': error.reason, 'detail': error.message, 'body': '', 'errors': fields or error.message}
	return JSONResponse(status_code=status, content=body, headers=headers)
