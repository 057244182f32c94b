"""A1111's 75-token chunks, on a tokenizer of one token per word (',' its own token): pure logic."""

from diffusiond.server.prompting.attention import parse_attention
from diffusiond.server.prompting.chunks import CHUNK, TokenIds, chunk_prompt

IDS = TokenIds(start=1, end=2, comma=3)


def _tokenize(texts: list[str]) -> list[list[int]]:
	return [[3 if word == ',' else 10 + len(word) for word in text.replace(',', ' , ').split()] for text in texts]


def _chunks(prompt: str) -> list[list[int]]:
	return [chunk.tokens for chunk in chunk_prompt(parse_attention(prompt), _tokenize, IDS).chunks]


def test_a_short_prompt_is_one_padded_chunk_and_an_empty_one_too() -> None:
	found = chunk_prompt(parse_attention('a bb'), _tokenize, IDS)
	assert found.chunks[0].tokens == [1, 11, 12, *[2] * 74]
	assert len(found.chunks[0].tokens) == CHUNK + 2
	assert found.token_count == 2
	assert _chunks('') == [[1, *[2] * 76]]


def test_long_prompts_go_on_in_chunks_of_75() -> None:
	found = chunk_prompt(parse_attention(' '.join(['x'] * 80)), _tokenize, IDS)
	assert [chunk.used for chunk in found.chunks] == [75, 5]
	assert found.token_count == 80
	assert found.chunks[1].tokens[:7] == [1, 11, 11, 11, 11, 11, 2]


def test_a_full_chunk_moves_the_text_after_a_near_comma_on() -> None:
	words = ['x'] * 60 + [','] + ['yy'] * 20  # the comma is the 61st token: 14 tokens after it do not fit
	chunks = chunk_prompt(parse_attention(' '.join(words)), _tokenize, IDS).chunks
	assert [chunk.used for chunk in chunks] == [61, 20]
	assert chunks[0].tokens[61] == 3
	assert chunks[1].tokens[1:21] == [12] * 20
	far = ['x'] * 10 + [','] + ['yy'] * 70  # 64 tokens after the comma: more than 20, cut where it is full
	assert [chunk.used for chunk in chunk_prompt(parse_attention(' '.join(far)), _tokenize, IDS).chunks] == [75, 6]


def test_break_ends_a_chunk_and_weights_follow_their_tokens() -> None:
	chunks = chunk_prompt(parse_attention('a (bb:1.5) BREAK [ccc]'), _tokenize, IDS).chunks
	assert [chunk.tokens[:4] for chunk in chunks] == [[1, 11, 12, 2], [1, 13, 2, 2]]
	assert chunks[0].weights[:4] == [1.0, 1.0, 1.5, 1.0]
	assert chunks[1].weights[1] == 1 / 1.1
