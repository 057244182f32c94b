"""Domain exceptions. Code anywhere in the server raises these; `error_status` maps them to gRPC statuses.

Each class has a stable UPPER_SNAKE `reason` (sent as ErrorInfo.reason); the README lists them all.
"""

from pydantic import BaseModel


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


def invalid(field: str, description: str) -> InvalidArgumentError:
	"""INVALID_ARGUMENT for one field."""
	return InvalidArgumentError([FieldViolation(field=field, description=description)])


class NotFoundError(DiffusiondError):
	reason = 'NOT_FOUND'


class ModelNotFoundError(NotFoundError):
	reason = 'MODEL_NOT_FOUND'


class LoraNotFoundError(NotFoundError):
	reason = 'LORA_NOT_FOUND'


class EmbeddingNotFoundError(NotFoundError):
	reason = 'EMBEDDING_NOT_FOUND'


class VaeNotFoundError(NotFoundError):
	reason = 'VAE_NOT_FOUND'


class ControlNetNotFoundError(NotFoundError):
	reason = 'CONTROLNET_NOT_FOUND'


class UpscalerNotFoundError(NotFoundError):
	reason = 'UPSCALER_NOT_FOUND'


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


class TokenMissingError(UnauthenticatedError):
	reason = 'TOKEN_MISSING'


class TokenInvalidError(UnauthenticatedError):
	reason = 'TOKEN_INVALID'


class FailedPreconditionError(DiffusiondError):
	reason = 'FAILED_PRECONDITION'


class JobFinishedError(FailedPreconditionError):
	reason = 'JOB_ALREADY_FINISHED'


class ModelLoadError(FailedPreconditionError):
	reason = 'MODEL_NOT_LOADABLE'


class ModelNotServedError(FailedPreconditionError):
	"""A model this daemon lacks that only nodes of its shared queue that are not serving now have."""

	reason = 'MODEL_NOT_SERVED'


class LoraNotApplicableError(FailedPreconditionError):
	"""A LoRA that cannot be used with this request: disabled, unreadable, or made for another base model."""

	reason = 'LORA_INCOMPATIBLE'


class AssetNotApplicableError(FailedPreconditionError):
	"""An embedding or a VAE that cannot be used with this request: unreadable, a refused pickle, or made for
	another base model."""

	reason = 'ASSET_INCOMPATIBLE'


class ModelUnsafeError(FailedPreconditionError):
	reason = 'MODEL_UNSAFE'


class DownloadRefusedError(FailedPreconditionError):
	"""The server answered, but not with a usable checkpoint (an error page, a wrong hash, a broken file)."""

	reason = 'DOWNLOAD_REFUSED'


class EmbedderMissingError(FailedPreconditionError):
	"""SimilarLoras needs the text embedding model (recommend/embedder.py), which is not installed or did not load."""

	reason = 'EMBEDDER_MISSING'


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


class MemoryBudgetError(ResourceExhaustedError):
	"""A job whose estimated working memory exceeds what a job may use, even with every memory saver on."""

	reason = 'MEMORY_BUDGET_EXCEEDED'


class DeviceOutOfMemoryError(ResourceExhaustedError):
	reason = 'DEVICE_OUT_OF_MEMORY'


class ReaderStalledError(ResourceExhaustedError):
	"""The client stopped reading its stream; the stream was cut so it holds nothing on the server."""

	reason = 'READER_STALLED'


class ImageTooLargeError(ResourceExhaustedError):
	"""An image whose pixel count is over the cap (a decompression bomb or simply too large)."""

	reason = 'IMAGE_TOO_LARGE'


class RequestTooLargeError(ResourceExhaustedError):
	"""An HTTP request body over server.max_receive_bytes (the gateway; gRPC refuses such a message itself)."""

	reason = 'REQUEST_TOO_LARGE'


class StorageFullError(ResourceExhaustedError):
	"""The disk (or the database) under the data folder has no room left."""

	reason = 'STORAGE_FULL'


class StorageReadOnlyError(FailedPreconditionError):
	"""The data folder (or the database) cannot be written: a read-only disk or folder."""

	reason = 'STORAGE_READ_ONLY'


class UnavailableError(DiffusiondError):
	reason = 'UNAVAILABLE'


class ShuttingDownError(UnavailableError):
	reason = 'SHUTTING_DOWN'


class DownloadUnavailableError(UnavailableError):
	"""The download server could not be reached or broke off; retrying resumes where it stopped."""

	reason = 'DOWNLOAD_INTERRUPTED'
	retry_after_s = 5.0


class JobCancelledError(DiffusiondError):
	reason = 'JOB_CANCELLED'


class DownloadCancelledError(JobCancelledError):
	reason = 'DOWNLOAD_CANCELLED'


class ShutdownCancelledError(JobCancelledError):
	"""A queued job that never started because the daemon shut down."""

	reason = 'CANCELLED_BY_SHUTDOWN'


class RestartCancelledError(JobCancelledError):
	"""A job the daemon found unfinished at start-up while resuming is off (queue.resume)."""

	reason = 'CANCELLED_BY_RESTART'


class AbortedError(DiffusiondError):
	reason = 'ABORTED'


class JobTakenOverError(AbortedError):
	"""This daemon's lease on a job lapsed (it was cut off from the database) and another daemon runs it now."""

	reason = 'JOB_TAKEN_OVER'


class DeadlineExceededError(DiffusiondError):
	reason = 'DEADLINE_EXCEEDED'


class DeadlineTooShortError(DeadlineExceededError):
	"""Refused up front: the queue ahead and the job's own estimate do not fit in the caller's deadline."""

	reason = 'DEADLINE_TOO_SHORT'


class InternalError(DiffusiondError):
	"""A bug in the daemon (logged with its trace); never the answer to bad input."""

	reason = 'INTERNAL'


class JobFailedError(DiffusiondError):
	"""A job failed inside the pipeline for a reason that is not the client's fault (a bug)."""

	reason = 'JOB_FAILED'


class InterruptedTwiceError(JobFailedError):
	"""A job whose daemon died while it ran, twice: it is not run a third time."""

	reason = 'INTERRUPTED_TWICE'


def _classes(base: type[DiffusiondError]) -> list[type[DiffusiondError]]:
	found = [base]
	for sub in base.__subclasses__():
		found += _classes(sub)
	return found


def from_reason(reason: str, message: str) -> DiffusiondError:
	"""The error another daemon reported by its reason (cluster/feeds.py), with its class, so its status is the
	same here; a reason this build does not know is a plain DiffusiondError (INTERNAL)."""
	for cls in _classes(DiffusiondError):
		if cls.reason == reason:
			error = cls.__new__(cls)
			DiffusiondError.__init__(error, message)
			return error
	return DiffusiondError(message)
