"""The words recommendations compare (recommend/text.py) and the history index (recommend/usage.py): plain tests."""

from concurrent.futures import ThreadPoolExecutor

import torch

from diffusiond.server.recommend.embedder import one_core
from diffusiond.server.recommend.text import contains, plain, similarity, tokens, words
from diffusiond.server.recommend.usage import UsageIndex
from diffusiond.server.store.usage_repo import PastGeneration


def test_prompt_syntax_is_read_as_plain_words() -> None:
	assert plain('(Pixel_Art:1.3), [sprite] <lora:pixel:0.8> BREAK {knight}') == 'pixel art , sprite knight'
	assert contains(tokens('a foxgirl, (red_fox:1.1)'), 'Red Fox')
	assert not contains(tokens('a foxgirl'), 'fox'), 'whole words only'
	assert not contains(tokens('pixel, art'), 'pixel art'), 'a phrase within one part of the prompt'
	assert not contains(tokens('anything'), ' , ')
	assert words('a masterpiece, best quality, a castle on the hill') == {'castle', 'hill'}
	assert similarity(frozenset({'a', 'b'}), frozenset({'b', 'c'})) == 1 / 3
	assert similarity(frozenset(), frozenset({'b'})) == 0.0


def test_the_history_index_counts_uses_with_similar_prompts_and_their_median_weight() -> None:
	index = UsageIndex(
		[
			PastGeneration(prompt='a castle on a hill', loras=[('detail', 0.6), ('castle', 1.0)]),
			PastGeneration(prompt='castle, hill, dawn', loras=[('detail', 0.9)]),
			PastGeneration(prompt='a bowl of fruit', loras=[('detail', 0.7), ('fruit', 1.0)]),
		]
	)
	found = index.similar_uses('a castle on a hill at night')
	assert sorted(found) == ['castle', 'detail']
	assert found['detail'].uses == 2
	assert found['detail'].strength == 2 / 3 + 2 / 4
	assert index.median_weight('detail') == 0.7
	assert index.median_weight('never') is None
	assert index.similar_uses('') == {}


def test_the_embedding_thread_uses_one_core_and_leaves_every_other_thread_its_count() -> None:
	before = torch.get_num_threads()
	torch.set_num_threads(2)  # what the daemon sets on a 2-core machine
	try:
		with ThreadPoolExecutor(1, initializer=one_core) as embedding, ThreadPoolExecutor(1) as other:
			assert embedding.submit(torch.get_num_threads).result() == 1
			assert other.submit(torch.get_num_threads).result() == 2, 'a thread started after it keeps the count'
		assert torch.get_num_threads() == 2
	finally:
		torch.set_num_threads(before)
