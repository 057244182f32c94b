"""History records as the whole daemon sees them (jobs write them, the store keeps them, history reads them)."""

from datetime import datetime

from pydantic import BaseModel

from diffusiond.server.schemas import JobSpec, JobState


class StoredImage(BaseModel):
	index: int
	seed: int
	path: str  # relative to the outputs folder
	mime_type: str
	width: int
	height: int
	size_bytes: int


class GenerationRecord(BaseModel):
	id: str
	created_at: datetime
	finished_at: datetime
	model_id: str
	model_name: str
	model_hash: str
	spec: JobSpec  # prompts as run, seeds, sampler, size, LoRAs, styles
	scheduler: str
	device: str
	timings: dict[str, float]
	favourite: bool
	tags: list[str]
	note: str
	images: list[StoredImage]
	state: JobState = JobState.SUCCEEDED  # RUNNING until complete; FAILED if the daemon died meanwhile
	error: str = ''
	node: str = ''  # the daemon that ran it (node.py); '' = recorded before nodes existed


class HistoryFilter(BaseModel):
	model: str = ''  # model id or name
	lora: str = ''  # LoRA id or name
	style: str = ''  # style name
	text: str = ''  # in the prompt or the negative prompt
	favourite_only: bool = False
	since: datetime | None = None
	until: datetime | None = None


class HistoryChanges(BaseModel):
	favourite: bool | None = None
	tags: list[str] | None = None
	note: str | None = None


class UsageRow(BaseModel):
	"""What one recorded job contributes to the usage statistics."""

	created_at: datetime
	model_id: str
	model_name: str
	loras: list[tuple[str, str]]  # (id, name)
	styles: list[str]
	images: int
