"""What jobs emit (events.py), and how ListJobs shows them, as protobuf."""

from collections.abc import Iterable

from diffusiond.server.errors import invalid
from diffusiond.server.events import (
	CompletedEvent,
	ImageEvent,
	JobEvent,
	JobInfo,
	PreviewEvent,
	ProgressEvent,
	QueuedEvent,
	StageEvent,
	StartedEvent,
)
from diffusiond.server.schemas import (
	JobState,
	LoraSpec,
	Stage,
)
from diffusiond.server.services.prompt_convert import report_to_pb
from diffusiond.server.services.sampler_convert import sampler_to_pb, schedule_to_pb
from diffusiond.v1 import generation_service_pb2 as gen_pb

_STATES = {state: gen_pb.JobState.Value(f'JOB_STATE_{state.name}') for state in JobState}


def stage_to_pb(stage: Stage) -> gen_pb.Stage.ValueType:
	return gen_pb.Stage.Value(f'STAGE_{stage.name}')


def state_to_pb(state: JobState) -> gen_pb.JobState.ValueType:
	return _STATES[state]


def states_from_pb(values: Iterable[int]) -> list[JobState]:
	"""ListJobs' state filter; an unknown or unspecified number is INVALID_ARGUMENT."""
	known = {int(number): state for state, number in _STATES.items()}
	found = []
	for value in values:
		if value not in known:
			names = ', '.join(gen_pb.JobState.Name(number) for number in _STATES.values())
			raise invalid('states', f'states holds {value}, which is no job state; use {names}')
		found.append(known[value])
	return found


def event_to_pb(job_id: str, event: JobEvent) -> gen_pb.GenerateEvent:
	message = gen_pb.GenerateEvent(job_id=job_id)
	match event:
		case QueuedEvent():
			message.queued.CopyFrom(gen_pb.QueuedEvent(position=event.position, queue_length=event.queue_length))
		case StartedEvent():
			message.started.CopyFrom(
				gen_pb.StartedEvent(
					model=event.model,
					prompt=event.prompt,
					negative_prompt=event.negative_prompt,
					styles=event.styles,
					loras=applied_to_pb(event.loras),
					seeds=event.seeds,
					sampler=sampler_to_pb(event.sampler),
					schedule=schedule_to_pb(event.schedule),
					memory_savers=event.memory_savers,
					scheduler=event.scheduler,
					width=event.width,
					height=event.height,
					steps=event.steps,
					prompt_report=report_to_pb(event.prompt_report),
					negative_prompt_report=report_to_pb(event.negative_report),
				)
			)
		case ProgressEvent():
			message.progress.CopyFrom(
				gen_pb.ProgressEvent(
					step=event.step,
					total_steps=event.total_steps,
					elapsed_seconds=event.elapsed_s,
					eta_seconds=event.eta_s,
					stage=stage_to_pb(event.stage),
					stage_step=event.stage_step,
					stage_steps=event.stage_steps,
				)
			)
		case StageEvent():
			message.stage.CopyFrom(
				gen_pb.StageEvent(stage=stage_to_pb(event.stage), steps=event.steps, elapsed_seconds=event.elapsed_s)
			)
		case PreviewEvent():
			message.preview.CopyFrom(
				gen_pb.PreviewEvent(
					step=event.step, data=event.data, mime_type=event.mime_type, width=event.width, height=event.height
				)
			)
		case ImageEvent():
			message.image.CopyFrom(
				gen_pb.ImageEvent(
					index=event.index,
					seed=event.seed,
					data=event.data,
					mime_type=event.mime_type,
					width=event.width,
					height=event.height,
				)
			)
		case CompletedEvent():
			timings = event.timings
			message.completed.CopyFrom(
				gen_pb.CompletedEvent(
					state=state_to_pb(event.state),
					storage=gen_pb.STORAGE_STATE_STORED if event.stored else gen_pb.STORAGE_STATE_NOT_STORED,
					storage_error=event.storage_error,
					notices=event.notices,
					timings=gen_pb.JobTimings(
						queued_seconds=timings.queued_s,
						load_seconds=timings.load_s,
						inference_seconds=timings.inference_s,
						encode_seconds=timings.encode_s,
						total_seconds=timings.total_s,
					),
				)
			)
	return message


def applied_to_pb(loras: list[LoraSpec]) -> list[gen_pb.AppliedLora]:
	return [
		gen_pb.AppliedLora(id=lora.id, name=lora.name, weight=lora.weight, short_hash=lora.short_hash) for lora in loras
	]


def job_to_pb(info: JobInfo) -> gen_pb.Job:
	job = gen_pb.Job(
		job_id=info.job_id,
		state=state_to_pb(info.state),
		position=info.position,
		model=info.model,
		prompt=info.prompt,
		width=info.width,
		height=info.height,
		steps=info.steps,
		total_steps=info.total_steps,
		num_images=info.num_images,
		step=info.step,
		loras=applied_to_pb(info.loras),
		styles=info.styles,
		stage=stage_to_pb(info.stage) if info.stage is not None else gen_pb.STAGE_UNSPECIFIED,
		end_reason=info.end_reason,
		error=info.error,
		attempts=info.attempts,
		node=info.node,
	)
	job.create_time.FromDatetime(info.created_at)
	if info.finished_at is not None:
		job.finish_time.FromDatetime(info.finished_at)
	return job
