"""Textual-inversion embeddings as a prompt names them: by their name's tokens, matched on the prompt's tokens
longest first (A1111's `EmbeddingDatabase.ids_lookup` and `find_embedding_at_position`)."""

from pydantic import BaseModel, Field


class Word(BaseModel):
	"""An embedding's name as tokens."""

	ids: list[int]
	name: str
	vectors: int


class Words(BaseModel):
	"""The embeddings a prompt may name, by their first token, longest first (A1111's `ids_lookup`)."""

	by_first: dict[int, list[Word]] = Field(default_factory=dict)

	@classmethod
	def of(cls, words: list[Word]) -> 'Words':
		found: dict[int, list[Word]] = {}
		for word in sorted(words, key=lambda word: -len(word.ids)):
			if word.ids:
				found.setdefault(word.ids[0], []).append(word)
		return cls(by_first=found)

	def at(self, tokens: list[int], position: int) -> Word | None:
		for word in self.by_first.get(tokens[position], []):
			if tokens[position : position + len(word.ids)] == word.ids:
				return word
		return None
