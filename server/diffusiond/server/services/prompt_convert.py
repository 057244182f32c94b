"""Prompt reports (prompting/report.py) and parsed parameters (prompting/parameters.py) as protobuf."""

from diffusiond.server.prompting.parameters import ParsedParameters
from diffusiond.server.prompting.report import PromptCheck, PromptReport
from diffusiond.server.services.sampler_convert import sampler_to_pb, schedule_to_pb
from diffusiond.v1 import generation_service_pb2 as gen_pb

FLOAT32_MAX = 3.4e38  # a larger parsed number has no float field value


def report_to_pb(found: PromptReport) -> gen_pb.PromptReport:
	return gen_pb.PromptReport(
		token_count=found.token_count,
		chunk_tokens=found.chunk_tokens,
		fragments=[gen_pb.WeightedText(text=piece.text, weight=piece.weight) for piece in found.fragments],
		loras=[
			gen_pb.PromptLora(tag=lora.tag, name=lora.name, weight=lora.weight, lora_id=lora.id) for lora in found.loras
		],
		embeddings=found.embeddings,
	)


def check_to_pb(found: PromptCheck) -> gen_pb.TokenizePromptResponse:
	return gen_pb.TokenizePromptResponse(
		model=found.model,
		prompt=report_to_pb(found.prompt),
		negative_prompt=report_to_pb(found.negative),
		unknown_loras=found.unknown_loras,
	)


def parsed_to_pb(found: ParsedParameters) -> gen_pb.ParseParametersResponse:
	request = gen_pb.GenerateRequest(
		prompt=found.prompt, negative_prompt=found.negative_prompt, model=found.model, vae=found.vae
	)
	for field in ('width', 'height', 'steps', 'clip_skip'):
		value = getattr(found, field)
		if isinstance(value, int) and 0 < value < 2**32:
			setattr(request, field, value)
	if found.seed is not None and 0 <= found.seed < 2**63:
		request.seed = found.seed
	if found.guidance_scale is not None and abs(found.guidance_scale) < FLOAT32_MAX:
		request.guidance_scale = found.guidance_scale
	if found.strength is not None and abs(found.strength) < FLOAT32_MAX:
		request.strength = found.strength
	if found.sampler is not None:
		request.sampler = sampler_to_pb(found.sampler)
	request.schedule = schedule_to_pb(found.schedule)
	return gen_pb.ParseParametersResponse(request=request, generator=found.generator, unknown=found.unknown)
