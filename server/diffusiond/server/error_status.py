"""The one table that maps domain errors to gRPC status codes (and, for the HTTP gateway, HTTP statuses), and the
google.rpc.Status built from them.

`interceptors.ErrorInterceptor` (and the gate) send these: ErrorInfo with the error's `reason` always,
BadRequest for field violations, RetryInfo where waiting helps.
"""

import errno

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from diffusiond.server.errors import (
	AbortedError,
	AlreadyExistsError,
	DeadlineExceededError,
	DeviceOutOfMemoryError,
	DiffusiondError,
	FailedPreconditionError,
	ImageTooLargeError,
	InvalidArgumentError,
	JobCancelledError,
	JobFailedError,
	NotFoundError,
	RequestTooLargeError,
	ResourceExhaustedError,
	StorageFullError,
	StorageReadOnlyError,
	UnauthenticatedError,
	UnavailableError,
)

ERROR_DOMAIN = 'diffusiond.v1'

# The one table: most specific classes are found first through the MRO.
STATUS_CODES: dict[type[DiffusiondError], grpc.StatusCode] = {
	InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
	NotFoundError: grpc.StatusCode.NOT_FOUND,
	AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
	UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
	FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
	ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
	UnavailableError: grpc.StatusCode.UNAVAILABLE,
	JobCancelledError: grpc.StatusCode.CANCELLED,
	AbortedError: grpc.StatusCode.ABORTED,
	DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
	JobFailedError: grpc.StatusCode.INTERNAL,
	DiffusiondError: grpc.StatusCode.INTERNAL,
}


# The same errors as the HTTP gateway answers them (gateway/errors.py): 422 for a field, 429 with Retry-After for a
# full queue, 503 while draining.
HTTP_STATUSES: dict[type[DiffusiondError], int] = {
	InvalidArgumentError: 422,
	NotFoundError: 404,
	AlreadyExistsError: 409,
	UnauthenticatedError: 401,
	FailedPreconditionError: 400,
	ImageTooLargeError: 413,
	RequestTooLargeError: 413,
	StorageFullError: 507,
	DeviceOutOfMemoryError: 503,
	ResourceExhaustedError: 429,
	UnavailableError: 503,
	JobCancelledError: 409,
	AbortedError: 409,
	DeadlineExceededError: 504,
	JobFailedError: 500,
	DiffusiondError: 500,
}

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def domain_error_of(exc: Exception) -> DiffusiondError | None:
	"""The domain error an exception from outside the domain stands for, or None for a bug.

	A full or read-only disk under the data folder is the user's to fix, never INTERNAL."""
	if isinstance(exc, DiffusiondError):
		return exc
	if isinstance(exc, OSError) and exc.errno in (*_FULL_ERRNOS, errno.EROFS):
		where = str(exc.filename or 'the data folder')
		if exc.errno == errno.EROFS:
			return StorageReadOnlyError(f'{where} cannot be written: the disk is read-only', metadata={'path': where})
		return StorageFullError(
			f'no space left to write {where} ({exc.strerror}): free some space, then retry', metadata={'path': where}
		)
	return None


def status_code_for(error: DiffusiondError) -> grpc.StatusCode:
	for cls in type(error).__mro__:
		if cls in STATUS_CODES:
			return STATUS_CODES[cls]
	return grpc.StatusCode.INTERNAL


def http_status_for(error: DiffusiondError) -> int:
	for cls in type(error).__mro__:
		if cls in HTTP_STATUSES:
			return HTTP_STATUSES[cls]
	return 500


def to_rpc_status(error: DiffusiondError) -> status_pb2.Status:
	"""The google.rpc.Status for `error`, with ErrorInfo and, where they apply, BadRequest and RetryInfo."""
	code = status_code_for(error)
	status = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.message)
	info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
	status.details.add().Pack(info)
	if isinstance(error, InvalidArgumentError):
		bad = error_details_pb2.BadRequest(
			field_violations=[
				error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
				for v in error.violations
			]
		)
		status.details.add().Pack(bad)
	retry_after_s = getattr(error, 'retry_after_s', None)
	if isinstance(retry_after_s, float | int):
		delay = duration_pb2.Duration()
		delay.FromNanoseconds(int(retry_after_s * 1e9))
		status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
	return status
