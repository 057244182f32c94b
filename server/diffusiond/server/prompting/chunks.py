"""Prompts of any length, in A1111's 75-token chunks (`sd_hijack_clip.tokenize_line`).

Each chunk is 77 tokens: the start token, 75 of the prompt (padded with the end token), the end token; every
token carries the weight of the fragment it came from. A chunk that fills up within `COMMA_BACKTRACK` tokens
after a comma moves the text after that comma into the next chunk, so that a phrase is not cut in two; BREAK
ends a chunk early. A textual-inversion embedding named in the prompt takes as many places as it has vectors
(never split across chunks), recorded as a `Fix` the encoder fills with the embedding's vectors; names are
matched on tokens, as A1111 matches them (`EmbeddingDatabase.find_embedding_at_position`). The encoder (engine)
encodes each chunk, weights it, and concatenates them.
"""

from collections.abc import Callable

from pydantic import BaseModel, Field

from diffusiond.server.prompting.attention import Fragment
from diffusiond.server.prompting.words import Word, Words

CHUNK = 75
COMMA_BACKTRACK = 20  # A1111's comma_padding_backtrack default


class Fix(BaseModel):
	"""An embedding's vectors in a chunk, from place `offset` of the prompt's tokens (after the start token)."""

	offset: int
	embedding: str  # the name the prompt used (the file's stem)
	vectors: int


class Chunk(BaseModel):
	tokens: list[int]  # CHUNK + 2: start, the prompt's tokens (end-padded), end
	weights: list[float]
	used: int  # how many of the CHUNK places hold the prompt's tokens
	fixes: list[Fix] = Field(default_factory=list)


class Chunked(BaseModel):
	chunks: list[Chunk]
	token_count: int  # the prompt's tokens (what A1111 shows as "n/75")


class PromptTokens(BaseModel):
	"""The prompt and the negative prompt in chunks (the negative padded to the prompt's count by the engine)."""

	prompt: Chunked
	negative: Chunked

	@property
	def embeddings(self) -> list[str]:
		"""The embeddings both prompts name, in order of first use."""
		found = [fix.embedding for side in (self.prompt, self.negative) for chunk in side.chunks for fix in chunk.fixes]
		return list(dict.fromkeys(found))

	@property
	def shape(self) -> tuple[int, int]:
		"""Chunk counts: jobs batch only with jobs of the same."""
		return len(self.prompt.chunks), len(self.negative.chunks)


class TokenIds(BaseModel):
	start: int
	end: int
	comma: int | None  # ',</w>', where the vocabulary has it


Tokenize = Callable[[list[str]], list[list[int]]]
PLACEHOLDER = 0  # what an embedding's places hold (A1111's too); the encoder replaces their token embeddings


def empty_chunk(start: int, end: int) -> Chunk:
	"""What an empty prompt is: the start token, then end tokens (pads a shorter conditioning)."""
	return Chunk(tokens=[start, *[end] * (CHUNK + 1)], weights=[1.0] * (CHUNK + 2), used=0)


class _Builder:
	def __init__(self, ids: TokenIds) -> None:
		self.ids = ids
		self.chunks: list[Chunk] = []
		self.tokens: list[int] = []
		self.weights: list[float] = []
		self.fixes: list[Fix] = []
		self.last_comma = -1

	def close(self) -> None:
		used = len(self.tokens)
		pad = CHUNK - used
		tokens = [self.ids.start, *self.tokens, *[self.ids.end] * pad, self.ids.end]
		weights = [1.0, *self.weights, *[1.0] * pad, 1.0]
		self.chunks.append(Chunk(tokens=tokens, weights=weights, used=used, fixes=self.fixes))
		self.tokens, self.weights, self.fixes, self.last_comma = [], [], [], -1

	def _make_room(self, token: int) -> None:
		"""A1111's checks before each token (or embedding) is placed: the comma backtrack, then a full chunk."""
		if token == self.ids.comma:
			self.last_comma = len(self.tokens)
		elif len(self.tokens) == CHUNK and self.last_comma != -1 and CHUNK - self.last_comma <= COMMA_BACKTRACK:
			cut = self.last_comma + 1  # the text after the comma moves on with the token that did not fit
			moved, moved_weights = self.tokens[cut:], self.weights[cut:]
			moved_fixes = [
				fix.model_copy(update={'offset': fix.offset - cut}) for fix in self.fixes if fix.offset >= cut
			]
			self.tokens, self.weights = self.tokens[:cut], self.weights[:cut]
			self.fixes = [fix for fix in self.fixes if fix.offset < cut]
			self.close()
			self.tokens, self.weights, self.fixes = moved, moved_weights, moved_fixes
		if len(self.tokens) == CHUNK:
			self.close()

	def add(self, token: int, weight: float) -> None:
		self._make_room(token)
		self.tokens.append(token)
		self.weights.append(weight)

	def add_embedding(self, first: int, word: Word, weight: float) -> None:
		self._make_room(first)
		if len(self.tokens) + word.vectors > CHUNK:
			self.close()
		self.fixes.append(Fix(offset=len(self.tokens), embedding=word.name, vectors=word.vectors))
		self.tokens += [PLACEHOLDER] * word.vectors
		self.weights += [weight] * word.vectors


def chunk_prompt(fragments: list[Fragment], tokenize: Tokenize, ids: TokenIds, words: Words | None = None) -> Chunked:
	"""The fragments' tokens in chunks; at least one chunk (an empty prompt is one chunk of end tokens).
	`words`: the embeddings the prompt may name."""
	builder = _Builder(ids)
	texts = [fragment.text for fragment in fragments if not fragment.is_break]
	tokenized = iter(tokenize(texts))
	for fragment in fragments:
		if fragment.is_break:
			builder.close()
			continue
		tokens, position = next(tokenized), 0
		while position < len(tokens):
			word = words.at(tokens, position) if words is not None else None
			if word is None:
				builder.add(tokens[position], fragment.weight)
				position += 1
			else:
				builder.add_embedding(tokens[position], word, fragment.weight)
				position += len(word.ids)
	if builder.tokens or not builder.chunks:
		builder.close()
	return Chunked(chunks=builder.chunks, token_count=_token_count(builder.chunks))


def _token_count(chunks: list[Chunk]) -> int:
	"""A1111's count: 75 for every chunk but the last, the last one's own tokens."""
	return CHUNK * (len(chunks) - 1) + chunks[-1].used
