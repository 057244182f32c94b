"""Prompt reports (prompting/report.py) as protobuf: the `started` event's and TokenizePrompt's."""

from diffusiond.server.prompting.report import PromptCheck, PromptReport
from diffusiond.v1 import generation_service_pb2 as gen_pb


def report_to_pb(found: PromptReport) -> gen_pb.PromptReport:
	return gen_pb.PromptReport(
		token_count=found.token_count,
		chunk_tokens=found.chunk_tokens,
		fragments=[gen_pb.WeightedText(text=piece.text, weight=piece.weight) for piece in found.fragments],
		loras=[
			gen_pb.PromptLora(tag=lora.tag, name=lora.name, weight=lora.weight, lora_id=lora.id) for lora in found.loras
		],
	)


def check_to_pb(found: PromptCheck) -> gen_pb.TokenizePromptResponse:
	return gen_pb.TokenizePromptResponse(
		model=found.model,
		prompt=report_to_pb(found.prompt),
		negative_prompt=report_to_pb(found.negative),
		unknown_loras=found.unknown_loras,
	)
