"""The prompts a job runs: the request's prompts with its styles applied in order (A1111's semantics), then the
trigger words of its LoRAs that the prompt lacks (unless the request turned that off)."""

from pydantic import BaseModel, Field

from diffusiond.server.catalog.loras import ResolvedLora, with_trigger_words
from diffusiond.server.styles.schemas import StyleRecord
from diffusiond.server.styles.templates import apply_styles


class Prompts(BaseModel):
	"""The prompts as the pipeline sees them (styles expanded, trigger words added) and the styles used."""

	prompt: str
	negative_prompt: str
	styles: list[str] = Field(default_factory=list)


def expand(
	prompt: str, negative_prompt: str, styles: list[StyleRecord], loras: list[ResolvedLora], trigger_words: bool
) -> Prompts:
	styled = apply_styles(prompt, negative_prompt, styles)
	final = with_trigger_words(styled.prompt, loras) if trigger_words else styled.prompt
	return Prompts(prompt=final, negative_prompt=styled.negative_prompt, styles=[style.name for style in styles])
