"""Conversion between protobuf messages and domain schemas: the only place that knows both."""

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
	ControlRequest,
	GenerateParams,
	ImageFormat,
	JobState,
	LoraRequest,
	LoraSpec,
	RefinerRequest,
	Stage,
)
from diffusiond.server.services.prompt_convert import report_to_pb
from diffusiond.server.services.sampler_convert import sampler_from_pb, sampler_to_pb
from diffusiond.server.tasks import HiresRequest, task_request
from diffusiond.v1 import generation_service_pb2 as gen_pb

_FORMATS = {
	gen_pb.IMAGE_FORMAT_UNSPECIFIED: ImageFormat.PNG,
	gen_pb.IMAGE_FORMAT_PNG: ImageFormat.PNG,
	gen_pb.IMAGE_FORMAT_JPEG: ImageFormat.JPEG,
	gen_pb.IMAGE_FORMAT_WEBP: ImageFormat.WEBP,
}
_STATES = {state: gen_pb.JobState.Value(f'JOB_STATE_{state.name}') for state in JobState}


def stage_to_pb(stage: Stage) -> gen_pb.Stage.ValueType:
	return gen_pb.Stage.Value(f'STAGE_{stage.name}')


def hires_from_pb(hires: gen_pb.HiresFix) -> HiresRequest:
	return HiresRequest(
		scale=hires.scale if hires.HasField('scale') else None,
		width=hires.width,
		height=hires.height,
		upscaler=hires.upscaler,
		steps=hires.steps,
		strength=hires.denoising_strength if hires.HasField('denoising_strength') else None,
		prompt=hires.prompt,
		negative_prompt=hires.negative_prompt,
		sampler=sampler_from_pb(hires.sampler),
	)


def params_from_pb(request: gen_pb.GenerateRequest) -> GenerateParams:
	has = request.HasField
	return GenerateParams(
		model=request.model,
		prompt=request.prompt,
		negative_prompt=request.negative_prompt,
		width=request.width if has('width') else None,
		height=request.height if has('height') else None,
		steps=request.steps if has('steps') else None,
		guidance_scale=request.guidance_scale if has('guidance_scale') else None,
		clip_skip=request.clip_skip if has('clip_skip') else None,
		sampler=sampler_from_pb(request.sampler),
		seed=request.seed if has('seed') else None,
		num_images=request.num_images if has('num_images') else None,
		output_format=_FORMATS.get(request.output_format, ImageFormat.PNG),
		quality=request.quality if has('quality') else None,
		loras=[
			LoraRequest(ref=lora.lora, weight=lora.weight if lora.HasField('weight') else None)
			for lora in request.loras
		],
		vae=request.vae,
		controlnets=[
			ControlRequest(
				ref=unit.model,
				image=unit.image,
				scale=unit.scale if unit.HasField('scale') else 1.0,
				start=unit.guidance_start,
				end=unit.guidance_end if unit.HasField('guidance_end') else 1.0,
				preprocessor=unit.preprocessor or 'none',
				low=unit.low_threshold if unit.HasField('low_threshold') else 100.0,
				high=unit.high_threshold if unit.HasField('high_threshold') else 200.0,
			)
			for unit in request.controlnets
		],
		refiner=RefinerRequest(
			ref=request.refiner.model,
			switch_at=request.refiner.switch_at if request.refiner.HasField('switch_at') else 0.8,
		)
		if has('refiner')
		else None,
		add_trigger_words=request.add_trigger_words,
		styles=list(request.styles),
		preview_every=request.preview_every,
		priority=request.priority,
		keep_running=request.keep_running,
		task=task_request(
			init_image=request.init_image,
			mask_image=request.mask_image,
			strength=request.strength if has('strength') else None,
			mask_blur=request.mask_blur,
			mask_crop_padding=request.mask_crop_padding if has('mask_crop_padding') else None,
			hires=hires_from_pb(request.hires) if has('hires') else None,
		),
	)


def state_to_pb(state: JobState) -> gen_pb.JobState.ValueType:
	return _STATES[state]


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
	)
	job.create_time.FromDatetime(info.created_at)
	return job
