"""Generate requests from protobuf: the fields, the task, the LoRAs, ControlNet units, the refiner; UpscaleImage's."""

from diffusiond.server.schemas import (
	ControlRequest,
	GenerateParams,
	ImageFormat,
	LoraRequest,
	RefinerRequest,
)
from diffusiond.server.services.sampler_convert import sampler_from_pb, schedule_from_pb
from diffusiond.server.tasks import HiresRequest, task_request
from diffusiond.server.tasks.upscale import UpscaleRequest
from diffusiond.v1 import generation_service_pb2 as gen_pb

_FORMATS = {
	gen_pb.IMAGE_FORMAT_UNSPECIFIED: ImageFormat.PNG,
	gen_pb.IMAGE_FORMAT_PNG: ImageFormat.PNG,
	gen_pb.IMAGE_FORMAT_JPEG: ImageFormat.JPEG,
	gen_pb.IMAGE_FORMAT_WEBP: ImageFormat.WEBP,
}


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


def upscale_from_pb(request: gen_pb.UpscaleImageRequest) -> UpscaleRequest:
	has = request.HasField
	return UpscaleRequest(
		image=request.image,
		upscaler=request.upscaler,
		scale=request.scale if has('scale') else None,
		tile_size=request.tile_size if has('tile_size') else None,
		tile_overlap=request.tile_overlap if has('tile_overlap') else None,
		output_format=_FORMATS.get(request.output_format, ImageFormat.PNG),
		quality=request.quality if has('quality') else None,
		priority=request.priority,
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
		schedule=schedule_from_pb(request.schedule),
		deep_cache=request.deep_cache_interval if has('deep_cache_interval') else None,
		token_merging=request.token_merging_ratio if has('token_merging_ratio') else None,
		fast_decode=request.fast_decode if has('fast_decode') else None,
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
