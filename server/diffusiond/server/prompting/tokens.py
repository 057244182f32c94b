"""A job's prompts as token chunks, made on the loop side from the model's own tokenizer files (transformers'
CLIPTokenizer reads them without torch), so that batching can see chunk counts and the engine only encodes."""

import html
import threading
from collections import OrderedDict
from pathlib import Path

import ftfy
from transformers import CLIPTokenizer

from diffusiond.server.catalog.schemas import ModelFormat, ModelInfo
from diffusiond.server.prompting.attention import parse_attention
from diffusiond.server.prompting.chunks import Chunked, PromptTokens, TokenIds, chunk_prompt
from diffusiond.server.prompting.lora_tags import strip_tags
from diffusiond.server.prompting.words import Word, Words

_CACHED = 8  # tokenizers kept (a few MiB each)
Names = tuple[tuple[str, int], ...]  # embeddings a prompt may name: (name, vectors)


def clip_clean(text: str) -> str:
	"""CLIP's `basic_clean`: ftfy's repairs (mojibake, full-width letters, ligatures) and HTML entities decoded,
	so a prompt is tokenized as the text encoders saw their training captions."""
	return html.unescape(html.unescape(ftfy.fix_text(text)))


class PromptTokenizer:
	def __init__(self, tokenizer: CLIPTokenizer) -> None:
		self._tokenizer = tokenizer
		self._lock = threading.Lock()
		self._words: tuple[Names, Words] | None = None
		vocab = tokenizer.get_vocab()
		self.ids = TokenIds(start=tokenizer.bos_token_id, end=tokenizer.eos_token_id, comma=vocab.get(',</w>'))

	def tokenize(self, texts: list[str]) -> list[list[int]]:
		"""Token ids of each text, cleaned first as CLIP's own tokenizer cleans (transformers' does not)."""
		if not texts:
			return []
		cleaned = [clip_clean(text) for text in texts]
		ids: list[list[int]] = self._tokenizer(cleaned, add_special_tokens=False, truncation=False).input_ids
		return ids

	def words(self, names: Names) -> Words:
		"""The embeddings `names` (name, vectors) as tokens; the last set is kept (a catalog changes seldom)."""
		with self._lock:
			if self._words is not None and self._words[0] == names:
				return self._words[1]
		made = Words.of(
			[
				Word(ids=ids, name=name, vectors=vectors)
				for (name, vectors), ids in zip(names, self.tokenize([name for name, _ in names]), strict=True)
			]
		)
		with self._lock:
			self._words = (names, made)
		return made

	def chunks(self, prompt: str, words: Words | None = None) -> Chunked:
		return chunk_prompt(parse_attention(prompt), self.tokenize, self.ids, words)

	def tokens(self, prompt: str, negative: str, names: Names = ()) -> PromptTokens:
		"""The prompts as the text encoder reads them: a `<lora:…>` tag is applied, not read as text; the
		embeddings of `names` take their places."""
		words = self.words(names) if names else None
		return PromptTokens(prompt=self.chunks(strip_tags(prompt), words), negative=self.chunks(negative, words))


def tokenizer_folder(model: ModelInfo) -> Path | None:
	"""Where the model's (first) tokenizer lives: in its folder, or in the configs a single file loads with."""
	root = model.path if model.format is ModelFormat.DIFFUSERS else model.config_dir
	if root is None:
		return None
	return next((root / name for name in ('tokenizer', 'tokenizer_2') if (root / name).is_dir()), None)


class Tokenizers:
	"""Per tokenizer folder, loaded once (blocking: use from a thread)."""

	def __init__(self) -> None:
		self._lock = threading.Lock()
		self._loaded: OrderedDict[Path, PromptTokenizer] = OrderedDict()

	def tokens(self, model: ModelInfo, prompt: str, negative: str, names: Names = ()) -> PromptTokens | None:
		"""The prompts in chunks with the model's tokenizer; None where its files are not to be found."""
		folder = tokenizer_folder(model)
		tokenizer = self.get(folder) if folder is not None else None
		return tokenizer.tokens(prompt, negative, names) if tokenizer is not None else None

	def get(self, folder: Path) -> PromptTokenizer | None:
		"""The tokenizer in `folder`, or None where there is none (a model without tokenizer files)."""
		with self._lock:
			found = self._loaded.get(folder)
			if found is not None:
				self._loaded.move_to_end(folder)
				return found
		if not any((folder / name).is_file() for name in ('vocab.json', 'tokenizer.json')):
			return None
		made = PromptTokenizer(CLIPTokenizer.from_pretrained(str(folder), local_files_only=True))
		with self._lock:
			self._loaded[folder] = made
			while len(self._loaded) > _CACHED:
				self._loaded.popitem(last=False)
		return made
