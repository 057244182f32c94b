"""RecommendLoras and SimilarLoras: their requests checked, their answers as messages."""

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.jobs.generation_rules import prompt_checks
from diffusiond.server.recommend.ranking import Reason, ReasonKind, Recommendation
from diffusiond.server.recommend.recommender import Recommendations, Similar
from diffusiond.server.services.lora_convert import lora_to_pb
from diffusiond.server.settings import LimitsSettings
from diffusiond.v1 import lora_service_pb2 as lora_pb

DEFAULT_LIMIT, MAX_LIMIT = 10, 100
_KINDS = {
	ReasonKind.TRIGGER_WORDS: lora_pb.REASON_KIND_TRIGGER_WORDS,
	ReasonKind.TAGS: lora_pb.REASON_KIND_TAGS,
	ReasonKind.TEXT: lora_pb.REASON_KIND_TEXT_SIMILARITY,
	ReasonKind.HISTORY: lora_pb.REASON_KIND_HISTORY,
}


def limit_of(limit: int) -> int:
	if not 0 <= limit <= MAX_LIMIT:
		raise InvalidArgumentError(
			[
				FieldViolation(
					field='limit', description=f'limit must be 1..{MAX_LIMIT} (0 = {DEFAULT_LIMIT}), not {limit}'
				)
			]
		)
	return limit or DEFAULT_LIMIT


def check_prompts(request: lora_pb.RecommendLorasRequest, limits: LimitsSettings) -> None:
	problems: list[FieldViolation] = []
	if not request.prompt.strip():
		problems.append(FieldViolation(field='prompt', description='prompt is required: the prompt to find LoRAs for'))
	texts = (('prompt', request.prompt), ('negative_prompt', request.negative_prompt))
	problems += [
		FieldViolation(field=field, description=problem)
		for field, problem in prompt_checks(texts, limits)
		if problem is not None
	]
	if problems:
		raise InvalidArgumentError(problems)


def _reason_to_pb(reason: Reason) -> lora_pb.RecommendationReason:
	return lora_pb.RecommendationReason(
		kind=_KINDS[reason.kind], score=reason.score, matched=reason.matched, detail=reason.detail
	)


def _item_to_pb(item: Recommendation) -> lora_pb.LoraRecommendation:
	return lora_pb.LoraRecommendation(
		lora=lora_to_pb(item.record),
		score=item.score,
		reasons=[_reason_to_pb(reason) for reason in item.reasons],
		suggested_weight=item.weight,
		prompt_tag=f'<lora:{item.record.name}:{item.weight:g}>',
	)


def recommendations_to_pb(found: Recommendations) -> lora_pb.RecommendLorasResponse:
	return lora_pb.RecommendLorasResponse(
		recommendations=[_item_to_pb(item) for item in found.items],
		model=found.model,
		embedder=found.embedder,
		notices=found.notices,
	)


def similar_to_pb(found: list[Similar], embedder: str) -> lora_pb.SimilarLorasResponse:
	return lora_pb.SimilarLorasResponse(
		loras=[lora_pb.SimilarLora(lora=lora_to_pb(item.record), similarity=item.similarity) for item in found],
		embedder=embedder,
	)
