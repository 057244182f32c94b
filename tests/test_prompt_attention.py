"""A1111's attention syntax: its own documented `parse_prompt_attention` examples, reproduced exactly."""

import pytest

from diffusiond.server.prompting.attention import Fragment, parse_attention

# modules/prompt_parser.py, parse_prompt_attention's doctests (and the weights it prints, to the last bit).
A1111_EXAMPLES = [
	('normal text', [('normal text', 1.0)]),
	('an (important) word', [('an ', 1.0), ('important', 1.1), (' word', 1.0)]),
	('(unbalanced', [('unbalanced', 1.1)]),
	('\\(literal\\]', [('(literal]', 1.0)]),
	('(unnecessary)(parens)', [('unnecessaryparens', 1.1)]),
	(
		'a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).',
		[
			('a ', 1.0),
			('house', 1.5730000000000004),
			(' ', 1.1),
			('on', 1.0),
			(' a ', 1.1),
			('hill', 0.55),
			(', sun, ', 1.1),
			('sky', 1.4641000000000006),
			('.', 1.1),
		],
	),
]


@pytest.mark.parametrize(('prompt', 'expected'), A1111_EXAMPLES)
def test_a1111s_documented_examples(prompt: str, expected: list[tuple[str, float]]) -> None:
	assert [(fragment.text, fragment.weight) for fragment in parse_attention(prompt)] == expected


@pytest.mark.parametrize(
	('prompt', 'expected'),
	[
		('(word:1.0)', [('word', 1.0)]),
		('((word))', [('word', 1.1 * 1.1)]),
		('[[word]]', [('word', 1 / 1.1 / 1.1)]),
		('(a [b] c:1.5)', [('a ', 1.5), ('b', 1.5 / 1.1), (' c', 1.5)]),
		('(neg:-0.5)', [('neg', -0.5)]),
		('a:b', [('a:b', 1.0)]),
		('(a:b)', [('a:b', 1.1)]),
		('(a:1.2.3)', [('a:1.2.3)', 1.1)]),
		('back\\\\slash', [('back\\slash', 1.0)]),
		('', [('', 1.0)]),
		('])', [('])', 1.0)]),
	],
)
def test_weights_nesting_and_literals(prompt: str, expected: list[tuple[str, float]]) -> None:
	assert [(fragment.text, fragment.weight) for fragment in parse_attention(prompt)] == expected


def test_break_starts_a_new_chunk_and_only_as_a_capital_word() -> None:
	fragments = parse_attention('a cat BREAK (a dog) BREAKFAST break')
	assert fragments == [
		Fragment(text='a cat', weight=1.0),
		Fragment(text='', weight=1.0, is_break=True),
		Fragment(text='', weight=1.0),
		Fragment(text='a dog', weight=1.1),
		Fragment(text=' BREAKFAST break', weight=1.0),
	]
