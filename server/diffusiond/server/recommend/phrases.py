"""Which LoRAs' trigger words and tags a prompt holds, found from the prompt's side: every run of up to eight words
within one comma-separated part of the prompt is looked up in a map from each LoRA phrase to the LoRAs that have it,
so a query costs the prompt's length, not the catalog's size. Built once per catalog change."""

from collections import defaultdict

from pydantic import BaseModel

from diffusiond.server.catalog.lora_schemas import LoraRecord
from diffusiond.server.recommend.text import contains, phrase_words, tokens

_LONGEST = 8  # words in the longest phrase looked up


def training_tags(record: LoraRecord) -> list[str]:
	"""Its tags and the top training tags not already among its trigger words."""
	triggers = {word.lower() for word in record.trigger_words}
	found: list[str] = []
	for tag in [*record.tags, *record.probe.suggested_triggers]:
		if tag.lower() not in triggers and tag not in found:
			found.append(tag)
	return found


class Found(BaseModel):
	triggers: dict[str, list[str]] = {}  # LoRA id → its trigger words in the prompt
	tags: dict[str, list[str]] = {}


class PhraseIndex:
	def __init__(self, records: list[LoraRecord]) -> None:
		self._triggers: dict[str, list[tuple[str, str]]] = defaultdict(list)  # phrase words → (LoRA id, as written)
		self._tags: dict[str, list[tuple[str, str]]] = defaultdict(list)
		self._split: list[tuple[str, str, bool]] = []  # phrases with commas: (LoRA id, phrase, is a trigger)
		for record in records:
			for phrase in record.trigger_words:
				self._add(self._triggers, record.id, phrase, True)
			for phrase in training_tags(record):
				self._add(self._tags, record.id, phrase, False)

	def _add(self, into: dict[str, list[tuple[str, str]]], lora_id: str, phrase: str, trigger: bool) -> None:
		words = phrase_words(phrase)
		if ',' in words.split():
			self._split.append((lora_id, phrase, trigger))
		elif words and (lora_id, phrase) not in into[words]:
			into[words].append((lora_id, phrase))

	def find(self, prompt: str) -> Found:
		"""The trigger words and tags of each LoRA that `prompt` holds as whole words, in the LoRA's order."""
		found = Found(triggers={}, tags={})
		seen: set[str] = set()
		for part in tokens(prompt).split(','):
			words = part.split()
			for start in range(len(words)):
				for end in range(start + 1, min(len(words), start + _LONGEST) + 1):
					seen.add(' '.join(words[start:end]))
		for key in seen:
			for lora_id, phrase in self._triggers.get(key, ()):
				found.triggers.setdefault(lora_id, []).append(phrase)
			for lora_id, phrase in self._tags.get(key, ()):
				found.tags.setdefault(lora_id, []).append(phrase)
		if self._split:
			haystack = tokens(prompt)
			for lora_id, phrase, trigger in self._split:
				if contains(haystack, phrase):
					(found.triggers if trigger else found.tags).setdefault(lora_id, []).append(phrase)
		return found
