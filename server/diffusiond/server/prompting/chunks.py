"""Prompts of any length, in A1111's 75-token chunks (`sd_hijack_clip.tokenize_line`).

Each chunk is 77 tokens: the start token, 75 of the prompt (padded with the end token), the end token; every
token carries the weight of the fragment it came from. A chunk that fills up within `COMMA_BACKTRACK` tokens
after a comma moves the text after that comma into the next chunk, so that a phrase is not cut in two; BREAK
ends a chunk early. The encoder (engine) encodes each chunk, weights it, and concatenates them.
"""

from collections.abc import Callable

from pydantic import BaseModel

from diffusiond.server.prompting.attention import Fragment

CHUNK = 75
COMMA_BACKTRACK = 20  # A1111's comma_padding_backtrack default


class Chunk(BaseModel):
	tokens: list[int]  # CHUNK + 2: start, the prompt's tokens (end-padded), end
	weights: list[float]
	used: int  # how many of the CHUNK places hold the prompt's tokens


class Chunked(BaseModel):
	chunks: list[Chunk]
	token_count: int  # the prompt's tokens (what A1111 shows as "n/75")


class PromptTokens(BaseModel):
	"""The prompt and the negative prompt in chunks (the negative padded to the prompt's count by the engine)."""

	prompt: Chunked
	negative: Chunked

	@property
	def shape(self) -> tuple[int, int]:
		"""Chunk counts: jobs batch only with jobs of the same."""
		return len(self.prompt.chunks), len(self.negative.chunks)


class TokenIds(BaseModel):
	start: int
	end: int
	comma: int | None  # ',</w>', where the vocabulary has it


Tokenize = Callable[[list[str]], list[list[int]]]


def empty_chunk(start: int, end: int) -> Chunk:
	"""What an empty prompt is: the start token, then end tokens (pads a shorter conditioning)."""
	return Chunk(tokens=[start, *[end] * (CHUNK + 1)], weights=[1.0] * (CHUNK + 2), used=0)


class _Builder:
	def __init__(self, ids: TokenIds) -> None:
		self.ids = ids
		self.chunks: list[Chunk] = []
		self.tokens: list[int] = []
		self.weights: list[float] = []
		self.last_comma = -1

	def close(self) -> None:
		used = len(self.tokens)
		pad = CHUNK - used
		tokens = [self.ids.start, *self.tokens, *[self.ids.end] * pad, self.ids.end]
		self.chunks.append(Chunk(tokens=tokens, weights=[1.0, *self.weights, *[1.0] * pad, 1.0], used=used))
		self.tokens, self.weights, self.last_comma = [], [], -1

	def add(self, token: int, weight: float) -> None:
		if token == self.ids.comma:
			self.last_comma = len(self.tokens)
		elif len(self.tokens) == CHUNK and self.last_comma != -1 and CHUNK - self.last_comma <= COMMA_BACKTRACK:
			cut = self.last_comma + 1  # the text after the comma moves on with the token that did not fit
			moved, moved_weights = self.tokens[cut:], self.weights[cut:]
			self.tokens, self.weights = self.tokens[:cut], self.weights[:cut]
			self.close()
			self.tokens, self.weights = moved, moved_weights
		if len(self.tokens) == CHUNK:
			self.close()
		self.tokens.append(token)
		self.weights.append(weight)


def chunk_prompt(fragments: list[Fragment], tokenize: Tokenize, ids: TokenIds) -> Chunked:
	"""The fragments' tokens in chunks; at least one chunk (an empty prompt is one chunk of end tokens)."""
	builder = _Builder(ids)
	texts = [fragment.text for fragment in fragments if not fragment.is_break]
	tokenized = iter(tokenize(texts))
	for fragment in fragments:
		if fragment.is_break:
			builder.close()
			continue
		for token in next(tokenized):
			builder.add(token, fragment.weight)
	if builder.tokens or not builder.chunks:
		builder.close()
	return Chunked(chunks=builder.chunks, token_count=_token_count(builder.chunks))


def _token_count(chunks: list[Chunk]) -> int:
	"""A1111's count: 75 for every chunk but the last, the last one's own tokens."""
	return CHUNK * (len(chunks) - 1) + chunks[-1].used
