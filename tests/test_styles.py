"""Style templates and styles.csv, as A1111 users know them."""

import pytest

from diffusiond.server.errors import InvalidArgumentError
from diffusiond.server.styles.csvfile import parse_styles_csv, write_styles_csv
from diffusiond.server.styles.schemas import name_problem
from diffusiond.server.styles.templates import apply_styles, merge
from tests.helpers import style_record


def test_templates_replace_or_append() -> None:
	assert merge('photo of {prompt}, 35mm', 'a fox') == 'photo of a fox, 35mm'
	assert merge('masterpiece', 'a fox') == 'a fox, masterpiece'
	assert merge('masterpiece', '') == 'masterpiece'
	assert merge('', 'a fox ') == 'a fox'
	assert merge('{prompt} and {prompt}', 'x') == 'x and x'
	styled = apply_styles(
		'a fox',
		'blurry',
		[style_record('a', 'photo of {prompt}', 'cartoon'), style_record('b', 'sharp', '{prompt}, lowres')],
	)
	assert (styled.prompt, styled.negative_prompt) == ('photo of a fox, sharp', 'blurry, cartoon, lowres')


def test_csv_reads_a1111_files() -> None:
	data = (
		'\ufeffname,prompt,negative_prompt\n'
		'Photo,"photo of {prompt}, 35mm","cartoon, drawing"\n'
		'\n'
		'"Multi line","first\nsecond",\n'
		'Short,only prompt\n'
	).encode()
	styles = parse_styles_csv(data)
	assert [(s.name, s.prompt, s.negative_prompt) for s in styles] == [
		('Photo', 'photo of {prompt}, 35mm', 'cartoon, drawing'),
		('Multi line', 'first\nsecond', ''),
		('Short', 'only prompt', ''),
	]
	legacy = parse_styles_csv(b'name,text\nOld,"old style, {prompt}"\n')
	assert [(s.name, s.prompt, s.negative_prompt) for s in legacy] == [('Old', 'old style, {prompt}', '')]


@pytest.mark.parametrize(
	('data', 'line', 'words'),
	[
		(b'title,body\nx,y\n', 1, 'header'),
		(b'name,prompt,negative_prompt\nok,a,b\nbad,a,b,c\n', 3, '4 fields'),
		(b'name,prompt,negative_prompt\nok,a,b\nok,c,d\n', 3, 'appears twice'),
		(b'name,prompt,negative_prompt\nok,a,b\n<bad>,a,b\n', 3, 'style name'),
		(b'name,prompt,negative_prompt\nok,"unterminated\n', 2, 'malformed'),
		(b'name,prompt,negative_prompt\nok,\xff\xfe,b\n', 2, 'UTF-8'),
	],
)
def test_malformed_csv_names_the_line(data: bytes, line: int, words: str) -> None:
	with pytest.raises(InvalidArgumentError) as caught:
		parse_styles_csv(data)
	assert f'line {line}:' in caught.value.message
	assert words in caught.value.message


def test_export_round_trips() -> None:
	styles = [style_record('A, with comma', 'x "quoted" {prompt}', 'neg\nline'), style_record('B', 'y')]
	data = write_styles_csv(styles)
	assert data.startswith('\ufeffname,prompt,negative_prompt\n'.encode())
	assert [(s.name, s.prompt, s.negative_prompt) for s in parse_styles_csv(data)] == [
		('A, with comma', 'x "quoted" {prompt}', 'neg\nline'),
		('B', 'y', ''),
	]


def test_style_names() -> None:
	assert name_problem('Photographic (35mm) & more') is None
	assert name_problem('Ünïcode 2') is None
	for bad in ('', ' padded', 'x' * 101, '<script>', '-leading'):
		assert name_problem(bad) is not None
