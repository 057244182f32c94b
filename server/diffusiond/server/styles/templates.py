"""A1111 style semantics: `{prompt}` in a style is replaced by the prompt; otherwise the style is appended."""

from pydantic import BaseModel

from diffusiond.server.styles.schemas import StyleRecord

PLACEHOLDER = '{prompt}'


class StyledPrompts(BaseModel):
	prompt: str
	negative_prompt: str


def merge(style_text: str, prompt: str) -> str:
	"""One style applied to one prompt, exactly as A1111's `merge_prompts`."""
	if PLACEHOLDER in style_text:
		return style_text.replace(PLACEHOLDER, prompt)
	return ', '.join(part for part in (prompt.strip(), style_text.strip()) if part)


def apply_styles(prompt: str, negative_prompt: str, styles: list[StyleRecord]) -> StyledPrompts:
	"""The styles applied in order to the prompt and to the negative prompt."""
	for style in styles:
		prompt = merge(style.prompt, prompt)
		negative_prompt = merge(style.negative_prompt, negative_prompt)
	return StyledPrompts(prompt=prompt, negative_prompt=negative_prompt)
