"""The client's exceptions: one class per gRPC status code the daemon uses, carrying its ErrorInfo.

	DiffusiondError                  every failed call (`code`, `reason`, `message`, `metadata`, …)
	├── InvalidArgument              `field_violations`: the request fields that broke a rule
	├── NotFound
	├── AlreadyExists
	├── FailedPrecondition
	├── Unauthenticated
	├── ResourceExhausted            `retry_after`: seconds to wait, when the daemon says
	├── Unavailable                  `retry_after` too (downloads); also an unreachable daemon
	├── Cancelled
	├── DeadlineExceeded
	└── InternalError                a bug in the daemon (INTERNAL, UNKNOWN and anything else)

Branch on the class (the code) and then on `reason`, the stable UPPER_SNAKE string the README's error
table lists (QUEUE_FULL, MODEL_NOT_FOUND, DEADLINE_TOO_SHORT, …). The gRPC error is the `__cause__`.
"""

from collections.abc import Iterable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = 'grpc-status-details-bin'


class DiffusiondError(Exception):
	code = grpc.StatusCode.UNKNOWN

	def __init__(
		self,
		message: str,
		*,
		reason: str = '',
		metadata: dict[str, str] | None = None,
		field_violations: dict[str, str] | None = None,
		retry_after: float | None = None,
	) -> None:
		super().__init__(f'{reason}: {message}' if reason else message)
		self.message = message
		self.reason = reason
		self.metadata = metadata or {}
		self.field_violations = field_violations or {}
		self.retry_after = retry_after


class InvalidArgument(DiffusiondError):
	code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DiffusiondError):
	code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DiffusiondError):
	code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DiffusiondError):
	code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(DiffusiondError):
	code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DiffusiondError):
	code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DiffusiondError):
	code = grpc.StatusCode.UNAVAILABLE


class Cancelled(DiffusiondError):
	code = grpc.StatusCode.CANCELLED


class DeadlineExceeded(DiffusiondError):
	code = grpc.StatusCode.DEADLINE_EXCEEDED


class InternalError(DiffusiondError):
	code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[DiffusiondError]] = {
	cls.code: cls
	for cls in (
		InvalidArgument,
		NotFound,
		AlreadyExists,
		FailedPrecondition,
		Unauthenticated,
		ResourceExhausted,
		Unavailable,
		Cancelled,
		DeadlineExceeded,
		InternalError,
	)
}


def _status_details(metadata: Iterable[object] | None) -> list[any_pb2.Any]:
	"""The google.rpc.Status details in a call's trailing metadata (sync tuples or grpc.aio.Metadata)."""
	for item in metadata or ():
		if isinstance(item, tuple) and len(item) == 2 and item[0] == _DETAILS_KEY and isinstance(item[1], bytes):
			return list(status_pb2.Status.FromString(item[1]).details)
	return []


def from_rpc_error(error: grpc.RpcError) -> DiffusiondError:
	"""The DiffusiondError for a failed call (sync or asyncio), with the google.rpc details the daemon attached."""
	if not isinstance(error, grpc.aio.AioRpcError | grpc.Call):
		return InternalError(str(error))
	code, message = error.code(), error.details()
	info = error_details_pb2.ErrorInfo()
	bad = error_details_pb2.BadRequest()
	retry = error_details_pb2.RetryInfo()
	for detail in _status_details(error.trailing_metadata()):
		for unpacked in (info, bad, retry):
			if detail.Is(unpacked.DESCRIPTOR):
				detail.Unpack(unpacked)
	found = _BY_CODE.get(code, InternalError)(
		message or code.name,
		reason=info.reason,
		metadata=dict(info.metadata),
		field_violations={violation.field: violation.description for violation in bad.field_violations},
		retry_after=retry.retry_delay.ToTimedelta().total_seconds() if retry.HasField('retry_delay') else None,
	)
	found.code = code
	return found
