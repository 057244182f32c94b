"""Conversion between history records and HistoryService messages; page tokens for newest-first keyset paging."""

import base64
import binascii
import json
from datetime import UTC, datetime

from google.protobuf.message import Message
from pydantic_core import from_json

from diffusiond.server.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError
from diffusiond.server.history.usage import Usage, UsageStats
from diffusiond.server.jobs.generation_rules import spec_violations
from diffusiond.server.records import GenerationRecord, HistoryChanges
from diffusiond.server.schemas import GenerateParams, ImageFormat, JobState, LoraRequest
from diffusiond.server.services.event_convert import applied_to_pb, state_to_pb
from diffusiond.server.services.model_convert import timestamp
from diffusiond.server.services.sampler_convert import sampler_to_pb, schedule_to_pb
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.tasks import Hires, HiresRequest, Task, Txt2ImgRequest
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import history_service_pb2 as history_pb

_FORMATS = {
	ImageFormat.PNG: gen_pb.IMAGE_FORMAT_PNG,
	ImageFormat.JPEG: gen_pb.IMAGE_FORMAT_JPEG,
	ImageFormat.WEBP: gen_pb.IMAGE_FORMAT_WEBP,
}
UPDATABLE = ('favourite', 'tags', 'note')


def generation_to_pb(record: GenerationRecord) -> history_pb.Generation:
	spec = record.spec
	message = history_pb.Generation(
		id=record.id,
		create_time=timestamp(record.created_at),
		model_id=record.model_id,
		model_name=record.model_name,
		model_hash=record.model_hash,
		prompt=spec.prompt,
		negative_prompt=spec.negative_prompt,
		styles=spec.styles,
		loras=applied_to_pb(spec.loras),
		sampler=sampler_to_pb(spec.sampler),
		schedule=schedule_to_pb(spec.schedule),
		scheduler=record.scheduler,
		width=spec.width,
		height=spec.height,
		steps=spec.steps,
		guidance_scale=spec.guidance_scale,
		seeds=spec.seeds,
		output_format=_FORMATS[spec.output_format],
		device=record.device,
		timings=record.timings,
		favourite=record.favourite,
		tags=record.tags,
		note=record.note,
		images=[history_pb.GeneratedImage(**image.model_dump()) for image in record.images],
		state=state_to_pb(record.state),
		error=record.error,
		node=record.node,
		clip_skip=record.spec.clip_skip,
	)
	if record.state is not JobState.RUNNING:  # a running job has not finished: its finish time stays unset
		message.finish_time.CopyFrom(timestamp(record.finished_at))
	return message


def rerun_request(task: Task) -> Txt2ImgRequest | HiresRequest:
	"""The request that runs a stored task again (only tasks without sources reach here)."""
	if isinstance(task, Hires):
		width, height = (0, 0) if task.scale else (task.width, task.height)
		return HiresRequest(
			scale=task.scale or None,
			width=width,
			height=height,
			upscaler=task.upscaler,
			steps=task.steps,
			strength=task.strength,
		)
	return Txt2ImgRequest()


def regenerate_params(record: GenerationRecord, limits: LimitsSettings) -> GenerateParams:
	"""The record's job exactly: prompts as run (styles already expanded), LoRAs by id, the same seeds."""
	spec = record.spec
	damaged = spec_violations(spec, limits, 'spec')
	if damaged:
		raise FailedPreconditionError(
			f'generation {record.id} cannot be run again: its stored parameters break the rules '
			f'({damaged[0].field}: {damaged[0].description})'
		)
	unstored = spec.task.unstored() or (
		'used ControlNet and its control images are not stored' if spec.controlnets else None
	)
	if unstored is not None:
		raise FailedPreconditionError(
			f'generation {record.id} {unstored}; send it again with Generate '
			f'({", ".join(f"{key}: {value}" for key, value in spec.task.infotext())}, seed {spec.seeds[0]})'
		)
	return GenerateParams(
		model=record.model_id,
		prompt=spec.prompt,
		negative_prompt=spec.negative_prompt,
		width=spec.width,
		height=spec.height,
		steps=spec.steps,
		guidance_scale=spec.guidance_scale,
		clip_skip=spec.clip_skip,
		sampler=spec.sampler,
		schedule=spec.schedule,
		deep_cache=spec.deep_cache,
		token_merging=spec.token_merging,
		fast_decode=spec.fast_decode,
		seed=spec.seeds[0],
		num_images=len(spec.seeds),
		output_format=spec.output_format,
		quality=None if spec.output_format is ImageFormat.PNG else spec.quality,
		loras=[LoraRequest(ref=lora.id, weight=lora.weight) for lora in spec.loras if not lora.in_prompt],
		vae=spec.vae.id if spec.vae is not None else 'none',
		task=rerun_request(spec.task),
	)


def changes_from_pb(request: history_pb.UpdateGenerationRequest) -> HistoryChanges:
	paths = list(request.update_mask.paths) or list(UPDATABLE)
	unknown = [path for path in paths if path not in UPDATABLE]
	tags = list(dict.fromkeys(tag.strip() for tag in request.generation.tags))
	problems = [f'{path!r} cannot be updated; allowed: {", ".join(UPDATABLE)}' for path in unknown]
	if '' in tags or len(tags) > 64 or len(request.generation.note) > 10_000:
		problems.append('at most 64 non-empty tags and a note of at most 10000 characters')
	if problems:
		raise InvalidArgumentError([FieldViolation(field='update_mask', description=text) for text in problems])
	generation = request.generation
	return HistoryChanges(
		favourite=generation.favourite if 'favourite' in paths else None,
		tags=tags if 'tags' in paths else None,
		note=generation.note if 'note' in paths else None,
	)


def encode_cursor(record: GenerationRecord) -> str:
	return base64.urlsafe_b64encode(json.dumps([record.created_at.isoformat(), record.id]).encode()).decode()


def decode_cursor(token: str) -> tuple[datetime, str] | None:
	if not token:
		return None
	try:
		created, last_id = from_json(base64.urlsafe_b64decode(token.encode()))  # depth-limited, unlike json
		return datetime.fromisoformat(str(created)), str(last_id)
	except (binascii.Error, ValueError, TypeError) as exc:
		raise InvalidArgumentError(
			[FieldViolation(field='page_token', description='page_token is not a token from a previous response')]
		) from exc


def _usage_to_pb(usage: Usage) -> history_pb.UsageCount:
	message = history_pb.UsageCount(id=usage.id, name=usage.name, jobs=usage.jobs, images=usage.images)
	if usage.last_used is not None:
		message.last_used_time.CopyFrom(timestamp(usage.last_used))
	return message


def usage_to_pb(stats: UsageStats) -> history_pb.GetUsageStatsResponse:
	return history_pb.GetUsageStatsResponse(
		models=[_usage_to_pb(usage) for usage in stats.models],
		loras=[_usage_to_pb(usage) for usage in stats.loras],
		styles=[_usage_to_pb(usage) for usage in stats.styles],
		images_per_day=[history_pb.DayCount(day=day, images=images) for day, images in stats.images_per_day],
		total_jobs=stats.total_jobs,
		total_images=stats.total_images,
	)


def time_from_pb(request: Message, field: str) -> datetime | None:
	"""The timestamp `field` of `request` as an aware datetime, None when unset; out of range is INVALID_ARGUMENT."""
	if not request.HasField(field):
		return None
	stamp = getattr(request, field)
	try:
		value: datetime = stamp.ToDatetime(tzinfo=UTC)
	except (ValueError, OverflowError) as exc:
		raise InvalidArgumentError(
			[FieldViolation(field=field, description=f'{field} must be a time between years 1 and 9999 ({exc})')]
		) from None
	return value
