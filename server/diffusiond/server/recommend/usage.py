"""What the history says about LoRAs: which were used with prompts like this one, and at what weights. Built from
the recorded generations' prompts and LoRAs (rebuilt when the history changes), queried through an index from each
word to the generations whose prompt has it, so a query touches only prompts that share a word with it."""

import statistics
from collections import defaultdict

from pydantic import BaseModel

from diffusiond.server.recommend.text import similarity, words
from diffusiond.server.store.usage_repo import PastGeneration

SIMILAR = 0.25  # the word-set similarity from which a past prompt counts as "like this one"


class Usage(BaseModel):
	uses: int  # generations with a similar prompt that used the LoRA
	strength: float  # the sum of those prompts' similarities


class UsageIndex:
	def __init__(self, generations: list[PastGeneration]) -> None:
		self._words = [words(generation.prompt) for generation in generations]
		self._loras = [generation.loras for generation in generations]
		self._by_word: dict[str, list[int]] = defaultdict(list)
		for index, found in enumerate(self._words):
			for word in found:
				self._by_word[word].append(index)
		weights: dict[str, list[float]] = defaultdict(list)
		for loras in self._loras:
			for lora_id, weight in loras:
				weights[lora_id].append(weight)
		self._medians = {lora_id: statistics.median(found) for lora_id, found in weights.items()}

	def median_weight(self, lora_id: str) -> float | None:
		"""The median weight the LoRA was used with; None when it never was."""
		return self._medians.get(lora_id)

	def similar_uses(self, prompt: str) -> dict[str, Usage]:
		"""LoRA id → its uses with prompts similar to `prompt`."""
		query = words(prompt)
		sharing = {index for word in query for index in self._by_word.get(word, ())}
		found: dict[str, Usage] = {}
		for index in sharing:
			alike = similarity(query, self._words[index])
			if alike < SIMILAR:
				continue
			for lora_id, _ in self._loras[index]:
				usage = found.setdefault(lora_id, Usage(uses=0, strength=0.0))
				usage.uses += 1
				usage.strength += alike
		return found
