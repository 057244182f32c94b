"""The prompts a job runs: the request's prompts with its styles applied in order (A1111's semantics), the LoRAs
its `<lora:name:weight>` tags name, then the trigger words of its LoRAs that the prompt lacks (unless the request
turned that off)."""

from pydantic import BaseModel, Field

from diffusiond.server.catalog.loras import ResolvedLora, with_trigger_words
from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.jobs.generation_rules import lora_weight_problem
from diffusiond.server.prompting.lora_tags import find_tags
from diffusiond.server.schemas import LoraRequest
from diffusiond.server.settings import LimitsSettings
from diffusiond.server.styles.schemas import StyleRecord
from diffusiond.server.styles.templates import StyledPrompts


class Prompts(BaseModel):
	"""The prompts as the pipeline sees them (styles expanded, trigger words added) and the styles used."""

	prompt: str
	negative_prompt: str
	styles: list[str] = Field(default_factory=list)


def tagged_loras(requested: list[LoraRequest], prompt: str, limits: LimitsSettings) -> list[LoraRequest]:
	"""The request's LoRAs followed by those the (styled) prompt's `<lora:…>` tags name; INVALID_ARGUMENT for a
	malformed tag, a weight out of range, a LoRA named both ways by the same reference, or too many LoRAs."""
	tags, problems = find_tags(prompt)
	named = {request.ref for request in requested}
	for tag in tags:
		if tag.name in named:
			problems.append(
				FieldViolation(
					field='prompt',
					description=f'LoRA {tag.name!r} is named in `loras` and as {tag.text} in the prompt; name it once',
				)
			)
		named.add(tag.name)
		if (problem := lora_weight_problem(tag.weight)) is not None:
			problems.append(FieldViolation(field='prompt', description=f'{tag.text}: {problem}'))
	if len(requested) + len(tags) > limits.max_loras:
		count = len(requested) + len(tags)
		problems.append(FieldViolation(field='prompt', description=f'at most {limits.max_loras} LoRAs, got {count}'))
	if problems:
		raise InvalidArgumentError(problems)
	return [*requested, *(LoraRequest(ref=tag.name, weight=tag.weight, in_prompt=True) for tag in tags)]


def expand(styled: StyledPrompts, styles: list[StyleRecord], loras: list[ResolvedLora], trigger_words: bool) -> Prompts:
	"""The prompts as recorded: styled, `<lora:…>` tags kept, the LoRAs' missing trigger words added."""
	final = with_trigger_words(styled.prompt, loras) if trigger_words else styled.prompt
	return Prompts(prompt=final, negative_prompt=styled.negative_prompt, styles=[style.name for style in styles])
