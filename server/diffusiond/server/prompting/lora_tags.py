"""A1111's LoRA tags: `<lora:name>` or `<lora:name:weight>` in the prompt applies that LoRA and is not encoded as
text (A1111's extra-network syntax; the tag stays in the prompt as recorded, as A1111 keeps it). A1111's third
field, a separate UNet weight, is accepted only when it equals the first: one weight drives both here."""

import math
import re

from pydantic import BaseModel

from diffusiond.server.errors import FieldViolation

TAG = re.compile(r'<lora:([^>]*)>', re.IGNORECASE)


class LoraTag(BaseModel):
	name: str
	weight: float
	text: str  # the tag as written


def _weight(value: str) -> float | None:
	try:
		weight = float(value)
	except ValueError:
		return None
	return weight if math.isfinite(weight) else None


def find_tags(prompt: str) -> tuple[list[LoraTag], list[FieldViolation]]:
	"""The prompt's LoRA tags in order, and what is wrong with any of them."""
	tags, problems = [], []
	for match in TAG.finditer(prompt):
		parts = [part.strip() for part in match.group(1).split(':')]
		name, weights = parts[0], [_weight(part) for part in parts[1:3]]
		if not name or any(weight is None for weight in weights) or len(parts) > 3:
			problems.append(f'{match.group(0)} is not <lora:name> or <lora:name:weight>')
		elif len(set(weights)) > 1:
			problems.append(f'{match.group(0)} gives the UNet another weight than the text encoder; give one weight')
		else:
			weight = weights[0] if weights and weights[0] is not None else 1.0
			tags.append(LoraTag(name=name, weight=weight, text=match.group(0)))
	return tags, [FieldViolation(field='prompt', description=problem) for problem in problems]


def strip_tags(prompt: str) -> str:
	"""The prompt as the text encoder reads it: without its LoRA tags."""
	return TAG.sub('', prompt)


def tag_for(name: str, weight: float) -> str:
	return f'<lora:{name}:{weight:g}>'
