"""Domain exceptions and the one table that maps them to gRPC status codes.

Code anywhere in the server raises these; `interceptors.ErrorInterceptor` turns them into a gRPC status
with google.rpc details (ErrorInfo with `reason`, BadRequest for field violations, RetryInfo).
"""

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from pydantic import BaseModel

ERROR_DOMAIN = 'diffusiond.v1'


class FieldViolation(BaseModel):
	field: str
	description: str


class DiffusiondError(Exception):
	"""Base of every error the server reports to clients. `reason` is a stable UPPER_SNAKE string."""

	reason = 'ERROR'

	def __init__(self, message: str, *, metadata: dict[str, str] | None = None) -> None:
		super().__init__(message)
		self.message = message
		self.metadata = metadata or {}


class InvalidArgumentError(DiffusiondError):
	reason = 'INVALID_ARGUMENT'

	def __init__(self, violations: list[FieldViolation]) -> None:
		super().__init__('; '.join(f'{v.field}: {v.description}' for v in violations))
		self.violations = violations


class NotFoundError(DiffusiondError):
	reason = 'NOT_FOUND'


class ModelNotFoundError(NotFoundError):
	reason = 'MODEL_NOT_FOUND'


class LoraNotFoundError(NotFoundError):
	reason = 'LORA_NOT_FOUND'


class StyleNotFoundError(NotFoundError):
	reason = 'STYLE_NOT_FOUND'


class GenerationNotFoundError(NotFoundError):
	reason = 'GENERATION_NOT_FOUND'


class JobNotFoundError(NotFoundError):
	reason = 'JOB_NOT_FOUND'


class AlreadyExistsError(DiffusiondError):
	reason = 'ALREADY_EXISTS'


class UnauthenticatedError(DiffusiondError):
	reason = 'UNAUTHENTICATED'


class FailedPreconditionError(DiffusiondError):
	reason = 'FAILED_PRECONDITION'


class JobFinishedError(FailedPreconditionError):
	reason = 'JOB_ALREADY_FINISHED'


class ModelLoadError(FailedPreconditionError):
	reason = 'MODEL_NOT_LOADABLE'


class LoraNotApplicableError(FailedPreconditionError):
	"""A LoRA that cannot be used with this request: disabled, unreadable, or made for another base model."""

	reason = 'LORA_INCOMPATIBLE'


class ModelUnsafeError(FailedPreconditionError):
	reason = 'MODEL_UNSAFE'


class DownloadRefusedError(FailedPreconditionError):
	"""The server answered, but not with a usable checkpoint (an error page, a wrong hash, a broken file)."""

	reason = 'DOWNLOAD_REFUSED'


class ResourceExhaustedError(DiffusiondError):
	reason = 'RESOURCE_EXHAUSTED'
	retry_after_s: float | None = None

	def __init__(
		self, message: str, *, retry_after_s: float | None = None, metadata: dict[str, str] | None = None
	) -> None:
		super().__init__(message, metadata=metadata)
		self.retry_after_s = retry_after_s


class QueueFullError(ResourceExhaustedError):
	reason = 'QUEUE_FULL'


class DownloadTooLargeError(ResourceExhaustedError):
	reason = 'DOWNLOAD_TOO_LARGE'


class DeviceOutOfMemoryError(ResourceExhaustedError):
	reason = 'DEVICE_OUT_OF_MEMORY'


class UnavailableError(DiffusiondError):
	reason = 'UNAVAILABLE'


class ShuttingDownError(UnavailableError):
	reason = 'SHUTTING_DOWN'


class NotReadyError(UnavailableError):
	reason = 'NOT_READY'


class DownloadUnavailableError(UnavailableError):
	"""The download server could not be reached or broke off; retrying resumes where it stopped."""

	reason = 'DOWNLOAD_INTERRUPTED'
	retry_after_s = 5.0


class JobCancelledError(DiffusiondError):
	reason = 'JOB_CANCELLED'


class DownloadCancelledError(JobCancelledError):
	reason = 'DOWNLOAD_CANCELLED'


class DeadlineExceededError(DiffusiondError):
	reason = 'DEADLINE_EXCEEDED'


class JobFailedError(DiffusiondError):
	"""A job failed inside the pipeline for a reason that is not the client's fault (a bug)."""

	reason = 'JOB_FAILED'


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
	DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
	JobFailedError: grpc.StatusCode.INTERNAL,
	DiffusiondError: grpc.StatusCode.INTERNAL,
}


def status_code_for(error: DiffusiondError) -> grpc.StatusCode:
	for cls in type(error).__mro__:
		if cls in STATUS_CODES:
			return STATUS_CODES[cls]
	return grpc.StatusCode.INTERNAL


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
