"""A1111's attention syntax, parsed exactly as `prompt_parser.parse_prompt_attention` does.

`(text)` multiplies the weight of `text` by 1.1, `[text]` divides it by 1.1, `(text:1.3)` multiplies it by 1.3;
brackets nest and multiply; `\\(`, `\\)`, `\\[`, `\\]` and `\\\\` are literal characters; an unclosed bracket applies
to the end of the prompt; `BREAK` (a word of its own, in capitals) ends the current 75-token chunk. Runs of equal
weight are merged. A1111's own examples are the table test of this module.
"""

import re

from pydantic import BaseModel

ROUND = 1.1
SQUARE = 1 / 1.1
TOKEN = re.compile(
	r"""
	\\\(|\\\)|\\\[|\\]|\\\\|\\|   # escapes, and a lone backslash
	\(|\[|
	:([+-]?[.\d]+)\)|             # the end of (text:1.3)
	\)|]|
	[^\\()\[\]:]+|
	:
	""",
	re.X,
)
BREAK = re.compile(r'\s*\bBREAK\b\s*', re.S)


class Fragment(BaseModel):
	text: str
	weight: float
	is_break: bool = False  # a BREAK: starts a new chunk; its text is empty


def _float(value: str) -> float | None:
	try:
		return float(value)
	except ValueError:
		return None


class _Part:
	"""A fragment while brackets still multiply its weight."""

	def __init__(self, text: str, is_break: bool = False) -> None:
		self.text = text
		self.weight = 1.0
		self.is_break = is_break


def parse_attention(prompt: str) -> list[Fragment]:
	"""The prompt as (text, weight) fragments, equal neighbours merged; BREAKs as their own fragments."""
	found: list[_Part] = []
	round_open: list[int] = []
	square_open: list[int] = []

	def multiply(start: int, factor: float) -> None:
		for part in found[start:]:
			part.weight *= factor

	for match in TOKEN.finditer(prompt):
		text, weight = match.group(0), match.group(1)
		number = _float(weight) if weight is not None else None
		if text.startswith('\\'):  # an escaped character; a lone backslash vanishes
			found.append(_Part(text[1:]))
		elif text == '(':
			round_open.append(len(found))
		elif text == '[':
			square_open.append(len(found))
		elif number is not None and round_open:
			multiply(round_open.pop(), number)
		elif text == ')' and round_open:
			multiply(round_open.pop(), ROUND)
		elif text == ']' and square_open:
			multiply(square_open.pop(), SQUARE)
		else:
			for index, piece in enumerate(BREAK.split(text)):
				if index:
					found.append(_Part('', is_break=True))
				found.append(_Part(piece))
	for start in round_open:
		multiply(start, ROUND)
	for start in square_open:
		multiply(start, SQUARE)
	fragments = [
		Fragment(text=part.text, weight=1.0 if part.is_break else part.weight, is_break=part.is_break) for part in found
	]
	return _merged(fragments) or [Fragment(text='', weight=1.0)]


def _merged(fragments: list[Fragment]) -> list[Fragment]:
	merged: list[Fragment] = []
	for fragment in fragments:
		last = merged[-1] if merged else None
		if last is not None and not last.is_break and not fragment.is_break and last.weight == fragment.weight:
			merged[-1] = Fragment(text=last.text + fragment.text, weight=last.weight)
		else:
			merged.append(fragment)
	return merged
