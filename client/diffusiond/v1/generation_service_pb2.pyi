import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sampler(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLER_UNSPECIFIED: _ClassVar[Sampler]
    SAMPLER_EULER: _ClassVar[Sampler]
    SAMPLER_EULER_A: _ClassVar[Sampler]
    SAMPLER_HEUN: _ClassVar[Sampler]
    SAMPLER_DPMPP_2M: _ClassVar[Sampler]
    SAMPLER_DPMPP_2M_KARRAS: _ClassVar[Sampler]
    SAMPLER_DPMPP_SDE: _ClassVar[Sampler]
    SAMPLER_DPMPP_SDE_KARRAS: _ClassVar[Sampler]
    SAMPLER_DPM2: _ClassVar[Sampler]
    SAMPLER_DPM2_A: _ClassVar[Sampler]
    SAMPLER_LMS: _ClassVar[Sampler]
    SAMPLER_DDIM: _ClassVar[Sampler]
    SAMPLER_PNDM: _ClassVar[Sampler]
    SAMPLER_UNIPC: _ClassVar[Sampler]
    SAMPLER_DEIS: _ClassVar[Sampler]
    SAMPLER_DPMPP_2M_SDE: _ClassVar[Sampler]
    SAMPLER_DPMPP_2M_SDE_KARRAS: _ClassVar[Sampler]
    SAMPLER_LMS_KARRAS: _ClassVar[Sampler]
    SAMPLER_EULER_KARRAS: _ClassVar[Sampler]

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
SAMPLER_UNSPECIFIED: Sampler
SAMPLER_EULER: Sampler
SAMPLER_EULER_A: Sampler
SAMPLER_HEUN: Sampler
SAMPLER_DPMPP_2M: Sampler
SAMPLER_DPMPP_2M_KARRAS: Sampler
SAMPLER_DPMPP_SDE: Sampler
SAMPLER_DPMPP_SDE_KARRAS: Sampler
SAMPLER_DPM2: Sampler
SAMPLER_DPM2_A: Sampler
SAMPLER_LMS: Sampler
SAMPLER_DDIM: Sampler
SAMPLER_PNDM: Sampler
SAMPLER_UNIPC: Sampler
SAMPLER_DEIS: Sampler
SAMPLER_DPMPP_2M_SDE: Sampler
SAMPLER_DPMPP_2M_SDE_KARRAS: Sampler
SAMPLER_LMS_KARRAS: Sampler
SAMPLER_EULER_KARRAS: Sampler
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class GenerateRequest(_message.Message):
    __slots__ = ("model", "prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "sampler", "seed", "num_images", "output_format", "quality")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_IMAGES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    sampler: Sampler
    seed: int
    num_images: int
    output_format: ImageFormat
    quality: int
    def __init__(self, model: _Optional[str] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., sampler: _Optional[_Union[Sampler, str]] = ..., seed: _Optional[int] = ..., num_images: _Optional[int] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("job_id", "queued", "started", "progress", "image", "completed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    queued: QueuedEvent
    started: StartedEvent
    progress: ProgressEvent
    image: ImageEvent
    completed: CompletedEvent
    def __init__(self, job_id: _Optional[str] = ..., queued: _Optional[_Union[QueuedEvent, _Mapping]] = ..., started: _Optional[_Union[StartedEvent, _Mapping]] = ..., progress: _Optional[_Union[ProgressEvent, _Mapping]] = ..., image: _Optional[_Union[ImageEvent, _Mapping]] = ..., completed: _Optional[_Union[CompletedEvent, _Mapping]] = ...) -> None: ...

class QueuedEvent(_message.Message):
    __slots__ = ("position", "queue_length")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    position: int
    queue_length: int
    def __init__(self, position: _Optional[int] = ..., queue_length: _Optional[int] = ...) -> None: ...

class StartedEvent(_message.Message):
    __slots__ = ("model", "seeds", "sampler", "scheduler", "width", "height", "steps")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    model: str
    seeds: _containers.RepeatedScalarFieldContainer[int]
    sampler: Sampler
    scheduler: str
    width: int
    height: int
    steps: int
    def __init__(self, model: _Optional[str] = ..., seeds: _Optional[_Iterable[int]] = ..., sampler: _Optional[_Union[Sampler, str]] = ..., scheduler: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., steps: _Optional[int] = ...) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("step", "total_steps", "elapsed_seconds", "eta_seconds")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    elapsed_seconds: float
    eta_seconds: float
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., elapsed_seconds: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class ImageEvent(_message.Message):
    __slots__ = ("index", "seed", "data", "mime_type", "width", "height")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    index: int
    seed: int
    data: bytes
    mime_type: str
    width: int
    height: int
    def __init__(self, index: _Optional[int] = ..., seed: _Optional[int] = ..., data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class CompletedEvent(_message.Message):
    __slots__ = ("state", "timings")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    timings: JobTimings
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., timings: _Optional[_Union[JobTimings, _Mapping]] = ...) -> None: ...

class JobTimings(_message.Message):
    __slots__ = ("queued_seconds", "load_seconds", "inference_seconds", "encode_seconds", "total_seconds")
    QUEUED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queued_seconds: float
    load_seconds: float
    inference_seconds: float
    encode_seconds: float
    total_seconds: float
    def __init__(self, queued_seconds: _Optional[float] = ..., load_seconds: _Optional[float] = ..., inference_seconds: _Optional[float] = ..., encode_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("previous_state",)
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    previous_state: JobState
    def __init__(self, previous_state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "position", "model", "prompt", "width", "height", "steps", "num_images", "step", "create_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    NUM_IMAGES_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    position: int
    model: str
    prompt: str
    width: int
    height: int
    steps: int
    num_images: int
    step: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., position: _Optional[int] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., steps: _Optional[int] = ..., num_images: _Optional[int] = ..., step: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
