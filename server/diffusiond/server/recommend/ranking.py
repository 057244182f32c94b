"""How LoRAs are ranked for a prompt (pure: no store, no model). Each reason gives a share of the score in 0..1:

- trigger words the prompt holds (as whole words; 0.40 at most: a half for the first, a quarter for the second…),
- its tags and top training tags the prompt holds (0.15 at most, the same way),
- the similarity of the prompt to the LoRA's text by the sentence embedding (0.25 at most: the cosine above 0.15,
  scaled to 0..1), when the embedding model is there,
- its uses with similar prompts in the history (0.20 at most: 1 - e^(-s/2) of the summed prompt similarities s).

A LoRA with none of them is not listed; one whose trigger word is in the negative prompt is not listed either (the
prompt asks for the opposite). The suggested weight is the LoRA's own default where it was set (not 1.0), else the
median weight it was used with, else 1.0."""

import enum
import math

from pydantic import BaseModel, Field

from diffusiond.server.catalog.lora_schemas import LoraRecord
from diffusiond.server.recommend.phrases import Found, PhraseIndex
from diffusiond.server.recommend.usage import Usage, UsageIndex

TRIGGER_SHARE, TAG_SHARE, TEXT_SHARE, HISTORY_SHARE = 0.40, 0.15, 0.25, 0.20
_TEXT_FLOOR = 0.15  # cosine similarity of unrelated short texts under this model
_UNSET_WEIGHT = 1.0


class ReasonKind(enum.Enum):
	TRIGGER_WORDS = 'trigger words'
	TAGS = 'tags'
	TEXT = 'text similarity'
	HISTORY = 'used with similar prompts'


class Reason(BaseModel):
	kind: ReasonKind
	score: float  # this reason's part of the LoRA's score
	matched: list[str] = Field(default_factory=list)  # the trigger words or tags found in the prompt
	detail: str = ''


class Recommendation(BaseModel):
	record: LoraRecord
	score: float
	reasons: list[Reason]
	weight: float


def _shared(count: int) -> float:
	"""1/2, 3/4, 7/8…: each further match adds half of what is left."""
	return 1.0 - 0.5**count


def suggested_weight(record: LoraRecord, history: UsageIndex) -> float:
	if record.default_weight != _UNSET_WEIGHT:
		return record.default_weight
	median = history.median_weight(record.id)
	return round(median, 2) if median is not None else _UNSET_WEIGHT


def _text_share(cosine: float | None) -> float:
	if cosine is None or cosine <= _TEXT_FLOOR:
		return 0.0
	return TEXT_SHARE * min(1.0, (cosine - _TEXT_FLOOR) / (1.0 - _TEXT_FLOOR))


def _history_share(usage: Usage | None) -> float:
	return HISTORY_SHARE * (1.0 - math.exp(-usage.strength / 2)) if usage is not None else 0.0


def _shares(lora_id: str, found: Found, cosine: float | None, usage: Usage | None) -> tuple[float, float, float, float]:
	"""Each reason's share: trigger words, tags, text similarity, history (plain arithmetic: it runs for every
	candidate; `_reasons` explains the few listed)."""
	triggers, tags = found.triggers.get(lora_id), found.tags.get(lora_id)
	return (
		TRIGGER_SHARE * _shared(len(triggers)) if triggers else 0.0,
		TAG_SHARE * _shared(len(tags)) if tags else 0.0,
		_text_share(cosine),
		_history_share(usage),
	)


def _reasons(lora_id: str, found: Found, cosine: float | None, usage: Usage | None) -> list[Reason]:
	"""The reasons behind the shares, for the LoRAs listed."""
	trigger, tag, text, history = _shares(lora_id, found, cosine, usage)
	reasons: list[Reason] = []
	if trigger:
		reasons.append(Reason(kind=ReasonKind.TRIGGER_WORDS, score=trigger, matched=found.triggers[lora_id]))
	if tag:
		reasons.append(Reason(kind=ReasonKind.TAGS, score=tag, matched=found.tags[lora_id]))
	if text:
		reasons.append(Reason(kind=ReasonKind.TEXT, score=text, detail=f'cosine similarity {cosine:.2f}'))
	if usage is not None:
		detail = f'used in {usage.uses} generation(s) with a similar prompt'
		reasons.append(Reason(kind=ReasonKind.HISTORY, score=history, detail=detail))
	return reasons


class Query(BaseModel):
	prompt: str
	negative_prompt: str
	similarities: dict[str, float] = {}  # LoRA id → cosine between the prompt's and its embeddings (when known)


def rank(
	query: Query, candidates: list[LoraRecord], phrases: PhraseIndex, history: UsageIndex, limit: int
) -> list[Recommendation]:
	"""The `limit` best candidates for the prompt, best first (ties by name)."""
	found = phrases.find(query.prompt)
	unwanted = phrases.find(query.negative_prompt).triggers if query.negative_prompt else {}
	uses = history.similar_uses(query.prompt)
	ranked: list[tuple[float, str, LoraRecord]] = []
	for record in candidates:
		if record.id in unwanted:
			continue
		score = round(sum(_shares(record.id, found, query.similarities.get(record.id), uses.get(record.id))), 4)
		if score > 0:
			ranked.append((-score, record.name, record))
	ranked.sort(key=lambda item: (item[0], item[1]))
	return [
		Recommendation(
			record=record,
			score=-score,
			reasons=_reasons(record.id, found, query.similarities.get(record.id), uses.get(record.id)),
			weight=suggested_weight(record, history),
		)
		for score, _, record in ranked[:limit]
	]
