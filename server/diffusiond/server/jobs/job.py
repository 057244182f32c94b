"""A generation job: its validated spec, its model, and where its denoising stands."""

from datetime import datetime

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.events import JobInfo
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.work import Work
from diffusiond.server.schemas import JobSpec


class Job(Work):
	def __init__(
		self,
		spec: JobSpec,
		model: ModelInfo,
		channel: EventChannel,
		priority: bool = False,
		job_id: str | None = None,
		created_at: datetime | None = None,
	) -> None:
		super().__init__(channel, priority, job_id, created_at)
		self.spec = spec
		self.model = model
		self.stage_start = 0  # the step a denoising stage started after
		self.stage_steps = 0
		self.notices: list[str] = []  # what the engine did differently, for `completed`

	def info(self, position: int) -> JobInfo:
		return JobInfo(
			job_id=self.id,
			state=self.state,
			position=position,
			model=self.spec.model,
			prompt=self.spec.prompt,
			width=self.spec.width,
			height=self.spec.height,
			steps=self.spec.steps,
			num_images=len(self.spec.seeds),
			step=self.step,
			total_steps=self.spec.progress_steps,
			created_at=self.created_at,
			loras=self.spec.loras,
			styles=self.spec.styles,
			stage=self.stage,
		)
