"""How a prompt is read, for editors and the `started` event: its token count and chunks (A1111's "n/75"
counter), its pieces of equal attention weight, and its LoRA tags with the LoRA each names."""

from pydantic import BaseModel, Field

from diffusiond.server.prompting.attention import parse_attention
from diffusiond.server.prompting.chunks import Chunked
from diffusiond.server.prompting.lora_tags import find_tags, strip_tags


class WeightedText(BaseModel):
	text: str
	weight: float


class TaggedLora(BaseModel):
	tag: str  # as written
	name: str  # the reference in the tag
	weight: float
	id: str = ''  # the LoRA it names; '' = none matches


class PromptReport(BaseModel):
	token_count: int = 0
	chunk_tokens: list[int] = Field(default_factory=list)  # the prompt's tokens in each 75-token chunk
	fragments: list[WeightedText] = Field(default_factory=list)
	loras: list[TaggedLora] = Field(default_factory=list)
	embeddings: list[str] = Field(default_factory=list)  # the embeddings it names, in order of first use


class PromptCheck(BaseModel):
	model: str  # whose tokenizer counted
	prompt: PromptReport
	negative: PromptReport
	unknown_loras: list[str] = Field(default_factory=list)


def report(prompt: str, chunked: Chunked | None, tagged_ids: list[str] | None = None) -> PromptReport:
	"""The report of `prompt`; without chunks (a model whose tokenizer is not at hand) only the text parts.
	`tagged_ids`: the ids of the LoRAs its tags named, in tag order (a job's)."""
	fragments = [
		WeightedText(text=fragment.text, weight=fragment.weight)
		for fragment in parse_attention(strip_tags(prompt))
		if not fragment.is_break and fragment.text
	]
	tags, _ = find_tags(prompt)
	ids = tagged_ids or []
	loras = [
		TaggedLora(tag=tag.text, name=tag.name, weight=tag.weight, id=ids[index] if index < len(ids) else '')
		for index, tag in enumerate(tags)
	]
	found = PromptReport(fragments=fragments, loras=loras)
	if chunked is not None:
		found.token_count = chunked.token_count
		found.chunk_tokens = [chunk.used for chunk in chunked.chunks]
		found.embeddings = list(dict.fromkeys(fix.embedding for chunk in chunked.chunks for fix in chunk.fixes))
	return found
