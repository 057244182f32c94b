"""The CLIP tokenizer files made offline from open-clip-torch's BPE vocabulary give, token for token, what that
package's own tokenizer gives (the one CLIP and OpenCLIP were trained with), text clean-up included."""

import importlib.util
import itertools
import random
from pathlib import Path
from types import ModuleType

import pytest
from transformers import CLIPTokenizer

from diffusiond.server.catalog.tokenizer_files import END, vocab_source, write_tokenizer
from diffusiond.server.prompting.tokens import PromptTokenizer

WORDS = [
	'masterpiece',
	'best quality',
	'a red fox',
	'in the snow',
	'1girl',
	'solo',
	'looking at viewer',
	'8k',
	'uhd',
	'f/1.8',
	'35mm',
	"it's",
	"don't",
	"you'll",
	'sci-fi',
	'cyber_punk',
	'dreamlike',
	'EasyNegative',
	'BREAK',
	'(masterpiece:1.2)',
	'((best quality))',
	'[blurry]',
	r'\(escaped\)',
	'<lora:detail_tweaker:0.8>',
	'{a|b|c}',
	'café',
	'naïve',
	'Über',
	'straße',
	'東京',
	'日本語のテキスト',
	'中文提示词',
	'Москва',
	'Ελληνικά',
	'עברית',
	'العربية',
	'🦊',
	'🔥🔥',
	'👩‍🚀',
	'❤️',
	'♪',
	'★彡',
	'—',
	'…',
	'«quotes»',
	'"double"',
	"'single'",
	'100%',
	'$5',
	'#hashtag',
	'@user',
	'e-mail@example.com',
	'https://example.com/a?b=c',
	'C++',
	'x²',
	'½',
	'Ⅻ',
	'\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48',  # fullwidth
	'ǅ',
	'fish &amp; chips',
	'&lt;tag&gt;',
	'cafÃ©',  # mojibake
	'\t',
	'\n',
	'   ',
	'UPPER lower MiXeD',
	'numbers 12345 67.89',
	'a,b;c:d',
	'end.',
	'semi;colon',
	'dash - dash',
]


def _reference() -> ModuleType:
	"""open_clip's tokenizer module, loaded from its file (the package itself imports torchvision)."""
	path = vocab_source().parent / 'tokenizer.py'
	spec = importlib.util.spec_from_file_location('open_clip_tokenizer', path)
	assert spec is not None
	assert spec.loader is not None
	module = importlib.util.module_from_spec(spec)
	spec.loader.exec_module(module)
	return module


def _prompts() -> list[str]:
	rng = random.Random(16)
	prompts = list(WORDS)
	prompts += [', '.join(rng.sample(WORDS, rng.randint(2, 8))) for _ in range(250)]
	prompts += [' '.join(itertools.islice(itertools.cycle(WORDS), count)) for count in (60, 120, 300)]  # past 77
	return prompts


@pytest.fixture(scope='module')
def made(tmp_path_factory: pytest.TempPathFactory) -> CLIPTokenizer:
	folder = tmp_path_factory.mktemp('tokenizer')
	write_tokenizer(folder, END)
	return CLIPTokenizer.from_pretrained(folder)


def test_the_made_tokenizer_equals_open_clips_on_varied_prompts(made: CLIPTokenizer) -> None:
	reference = _reference().SimpleTokenizer()
	prompts = _prompts()
	assert len(prompts) > 300
	ours = PromptTokenizer(made).tokenize(prompts)
	for prompt, tokens in zip(prompts, ours, strict=True):
		assert tokens == reference.encode(prompt), prompt
	assert len(made) == 49408
	assert made(WORDS[0]).input_ids == [49406, *reference.encode(WORDS[0]), 49407]


def test_sd1_pads_with_the_end_token_and_openclip_with_the_exclamation_mark(
	made: CLIPTokenizer, tmp_path: Path
) -> None:
	write_tokenizer(tmp_path, '!')
	openclip = CLIPTokenizer.from_pretrained(tmp_path)
	padded = made('a fox', padding='max_length', max_length=77).input_ids
	assert padded[:4] == [49406, 320, 3240, 49407]
	assert set(padded[4:]) == {49407}
	assert set(openclip('a fox', padding='max_length', max_length=77).input_ids[4:]) == {0}
	assert openclip.pad_token == '!'
	assert openclip.pad_token_id == 0
	assert len(made('word ' * 200, truncation=True, max_length=77).input_ids) == 77
