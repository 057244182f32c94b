"""The LRU cache of loaded pipelines: several in RAM, only the active one on the device.

Changed by the worker thread only; read (for GetSystemInfo) from the event loop, hence the lock.
"""

import threading
from collections import OrderedDict

from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin
from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.engine.lora_apply import AdapterState


class Entry(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	info: ModelInfo
	pipe: DiffusionPipeline
	scheduler: SchedulerMixin  # the model's own scheduler, whatever sampler ran last
	vae: AutoencoderKL | None = None  # the model's own VAE, whatever VAE ran last
	bytes: int
	adapters: AdapterState = Field(default_factory=AdapterState)  # LoRAs attached to this pipeline
	warmed: bool = False  # torch.compile warm-up done
	self_placed: bool = False  # under model CPU offload: the pipeline moves its own modules, never we


def cache_key(model: ModelInfo) -> str:
	return model.id or str(model.path)


class PipelineCache:
	"""Least recently used first; bounded by a count and a byte total (the newest entry always stays)."""

	def __init__(self, max_models: int, max_bytes: int) -> None:
		self.max_models = max_models
		self.max_bytes = max_bytes
		self._entries: OrderedDict[str, Entry] = OrderedDict()
		self._lock = threading.Lock()

	def get(self, key: str) -> Entry | None:
		with self._lock:
			entry = self._entries.get(key)
			if entry is not None:
				self._entries.move_to_end(key)
			return entry

	def put(self, entry: Entry) -> list[Entry]:
		"""Adds `entry` as the most recent; returns the entries evicted to stay within bounds."""
		evicted: list[Entry] = []
		with self._lock:
			self._entries[cache_key(entry.info)] = entry
			self._entries.move_to_end(cache_key(entry.info))
			while len(self._entries) > 1 and (len(self._entries) > self.max_models or self._bytes() > self.max_bytes):
				evicted.append(self._entries.popitem(last=False)[1])
		return evicted

	def pop(self, key: str) -> Entry | None:
		with self._lock:
			return self._entries.pop(key, None)

	def clear(self) -> None:
		with self._lock:
			self._entries.clear()

	def _bytes(self) -> int:
		return sum(entry.bytes for entry in self._entries.values())

	def entries(self) -> list[Entry]:
		"""Most recently used first."""
		with self._lock:
			return list(reversed(self._entries.values()))
