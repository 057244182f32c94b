"""Internal schemas of what a job emits (its stream's events) and how ListJobs shows it.

These never import generated protobuf code; `services/event_convert.py` maps them at the edge.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.prompting.report import PromptReport
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.schemas import JobState, LoraSpec, Stage


class QueuedEvent(BaseModel):
	position: int
	queue_length: int


class StartedEvent(BaseModel):
	model: str
	prompt: str = ''
	negative_prompt: str = ''
	styles: list[str] = Field(default_factory=list)
	loras: list[LoraSpec] = Field(default_factory=list)
	seeds: list[int]
	sampler: Sampler
	schedule: Schedule = Schedule.UNSPECIFIED
	scheduler: str
	memory_savers: list[str] = Field(default_factory=list)  # turned on so that the job fits (jobs/memory.py)
	width: int
	height: int
	steps: int
	prompt_report: PromptReport = Field(default_factory=PromptReport)
	negative_report: PromptReport = Field(default_factory=PromptReport)


class ProgressEvent(BaseModel):
	step: int
	total_steps: int
	elapsed_s: float
	eta_s: float
	stage: Stage = Stage.DENOISING
	stage_step: int = 0
	stage_steps: int = 0


class StageEvent(BaseModel):
	stage: Stage
	steps: int = 0  # what a denoising stage denoises
	elapsed_s: float = 0.0


_BYTES_AS_BASE64 = ConfigDict(ser_json_bytes='base64', val_json_bytes='base64')  # relayed between daemons as JSON


class PreviewEvent(BaseModel):
	model_config = _BYTES_AS_BASE64

	step: int
	data: bytes
	mime_type: str = 'image/jpeg'
	width: int
	height: int


class ImageEvent(BaseModel):
	model_config = _BYTES_AS_BASE64

	index: int
	seed: int
	data: bytes
	mime_type: str
	width: int
	height: int


class JobTimings(BaseModel):
	queued_s: float = 0.0
	load_s: float = 0.0
	inference_s: float = 0.0
	encode_s: float = 0.0
	total_s: float = 0.0


class CompletedEvent(BaseModel):
	state: JobState
	timings: JobTimings
	stored: bool = True  # the images are in the outputs folder and the history
	storage_error: str = ''  # why they are not, when `stored` is False
	notices: list[str] = Field(default_factory=list)  # what the engine did differently (a float32 re-decode)


JobEvent = QueuedEvent | StartedEvent | ProgressEvent | StageEvent | PreviewEvent | ImageEvent | CompletedEvent


class JobInfo(BaseModel):
	"""A queued or running job, as ListJobs shows it."""

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
	total_steps: int
	created_at: datetime = Field(description='UTC submission time.')
	loras: list[LoraSpec] = Field(default_factory=list)
	styles: list[str] = Field(default_factory=list)
	stage: Stage | None = None  # a running job's
	end_reason: str = ''  # a finished job's (ListJobs include_finished, from the store)
	error: str = ''
	finished_at: datetime | None = None
	attempts: int = 0
	node: str = ''  # the daemon running it or that ran it ('' while queued)
