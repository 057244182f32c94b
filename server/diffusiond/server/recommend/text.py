"""The words of prompts and LoRA metadata, as the recommendations compare them: lower case, A1111's prompt syntax
taken out (`<lora:…>` tags, attention brackets and weights, BREAK / AND), phrases split at commas, common words that
say nothing about a LoRA left out of word sets."""

import functools
import re

_TAG = re.compile(r'<[^<>]*>')  # <lora:name:0.8>, <lyco:…>, <hypernet:…>
_WEIGHT = re.compile(r':\s*-?\d+(?:\.\d+)?')  # (word:1.2)
_SYNTAX = re.compile(r'[()\[\]{}|]|\bBREAK\b|\bAND\b')
_SPACE = re.compile(r'[\s_]+')
_WORD = re.compile(r"[0-9a-z][0-9a-z'+-]*")
_TOKEN = re.compile(r"[0-9a-z][0-9a-z'+-]*|,")
_STOP = frozenset(
	[
		'a',
		'an',
		'the',
		'of',
		'in',
		'on',
		'at',
		'to',
		'and',
		'or',
		'with',
		'without',
		'for',
		'from',
		'by',
		'is',
		'are',
		'be',
		'as',
		'it',
		'its',
		'this',
		'that',
		'these',
		'those',
		'very',
		'masterpiece',
		'best',
		'quality',
		'high',
		'highly',
		'detailed',
		'ultra',
		'8k',
		'4k',
		'hd',
		'photo',
		'picture',
		'image',
	]
)


def plain(text: str) -> str:
	"""`text` without prompt syntax, lower case, with single spaces (commas kept)."""
	text = _SYNTAX.sub(' ', _WEIGHT.sub('', _TAG.sub(' ', text)))
	return _SPACE.sub(' ', text.lower()).strip()


def words(text: str) -> frozenset[str]:
	"""The content words of `text`."""
	return frozenset(word for word in _WORD.findall(plain(text)) if word not in _STOP)


def tokens(text: str) -> str:
	"""`text` as its words and commas, each between single spaces (what `contains` looks in)."""
	return f' {" ".join(_TOKEN.findall(plain(text)))} '


@functools.lru_cache(maxsize=65536)
def phrase_words(phrase: str) -> str:
	"""A trigger word or tag as the words (and commas) it is matched by, single-spaced ('' when it has none)."""
	return ' '.join(_TOKEN.findall(plain(phrase))).strip(' ,')


def contains(haystack: str, phrase: str) -> bool:
	"""Whether `haystack` (from `tokens`) holds `phrase` as whole words (a trigger word, a tag)."""
	words = phrase_words(phrase)
	return bool(words) and f' {words} ' in haystack


def similarity(first: frozenset[str], second: frozenset[str]) -> float:
	"""Jaccard similarity of two word sets (0 when either is empty)."""
	if not first or not second:
		return 0.0
	return len(first & second) / len(first | second)
