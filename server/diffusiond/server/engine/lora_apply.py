"""Applies a job's LoRAs to the active pipeline exactly, and cheaply when the set repeats. Worker thread only.

Each LoRA is loaded once per pipeline as a peft adapter (diffusers `load_lora_weights`, both the kohya and
the diffusers layouts) and kept attached; a job then only selects adapters and weights with
`set_adapters`, or `disable_lora` when it has none. Once `max_adapters` are attached, a new LoRA is
hotswapped into the least recently used adapter of the same layout (weights copied in place), which
costs a fraction of attaching a new one. Disabled adapters are skipped in the forward pass
entirely and weight-0 LoRAs are never selected, so a job without LoRAs gives the exact pixels of the bare
model, whatever ran before (a failed or cancelled job included: every job sets the state it needs).
"""

import hashlib
import logging
import warnings
from collections import OrderedDict

import torch
from diffusers import DiffusionPipeline
from pydantic import BaseModel, ConfigDict, Field
from safetensors import SafetensorError
from safetensors.torch import load_file

from diffusiond.server.errors import LoraNotApplicableError
from diffusiond.server.schemas import LoraSpec

log = logging.getLogger(__name__)
LOAD_ERRORS = (ValueError, RuntimeError, KeyError, TypeError, AttributeError, OSError, SafetensorError)
Tensors = dict[str, torch.Tensor]
_UNKNOWN = (('', -1.0),)  # a selection no job asks for: forces the next one to be set


class AdapterState(BaseModel):
	"""What one pipeline carries: attached adapters (LoRA file key → adapter name, oldest first), the selection."""

	model_config = ConfigDict(arbitrary_types_allowed=True)

	attached: OrderedDict[str, str] = Field(default_factory=OrderedDict)
	names: dict[str, str] = Field(default_factory=dict)  # LoRA file key → the LoRA's name (what is warm here)
	signatures: dict[str, str] = Field(default_factory=dict)  # adapter name → layout of the LoRA in it
	active: tuple[tuple[str, float], ...] = ()
	enabled: bool = False


class LoraFiles:
	"""Parsed LoRA files, least recently used dropped first once their tensors pass `max_bytes`."""

	def __init__(self, max_bytes: int) -> None:
		self.max_bytes = max_bytes
		self._files: OrderedDict[str, Tensors] = OrderedDict()

	def get(self, lora: LoraSpec) -> Tensors:
		tensors = self._files.get(lora.key)
		if tensors is None:
			try:
				tensors = load_file(lora.path)
			except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
				raise LoraNotApplicableError(f'LoRA {lora.name!r} could not be read: {exc}') from exc
			self._files[lora.key] = tensors
			while len(self._files) > 1 and self._bytes() > self.max_bytes:
				self._files.popitem(last=False)
		self._files.move_to_end(lora.key)
		return tensors

	def signature(self, lora: LoraSpec) -> str:
		"""Keys, shapes and alphas: two LoRAs with the same signature can take each other's adapter slot."""
		tensors = self.get(lora)
		parts = [f'{key}:{tuple(value.shape)}' for key, value in sorted(tensors.items())]
		parts += [f'{key}={float(value)}' for key, value in sorted(tensors.items()) if key.endswith('.alpha')]
		return hashlib.sha1('\n'.join(parts).encode()).hexdigest()

	def _bytes(self) -> int:
		return sum(t.numel() * t.element_size() for tensors in self._files.values() for t in tensors.values())


def _attach(pipe: DiffusionPipeline, state: AdapterState, lora: LoraSpec, files: LoraFiles) -> str:
	name = f'lora_{len(state.attached)}_{lora.id}'
	while name in state.attached.values():
		name += '_'
	state.active, state.enabled = _UNKNOWN, True  # loading may change which adapters are active: reselect
	with warnings.catch_warnings():
		warnings.filterwarnings('ignore', category=UserWarning, module='peft')  # "multiple adapters": intended
		try:
			# a copy (diffusers pops keys); low_cpu_mem_usage skips initialising weights that are overwritten anyway
			pipe.load_lora_weights(dict(files.get(lora)), adapter_name=name, low_cpu_mem_usage=True)
		except LOAD_ERRORS as exc:
			raise LoraNotApplicableError(
				f'LoRA {lora.name!r} does not fit this model ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})',
				metadata={'lora': lora.name},
			) from exc
	if not any(name in names for names in pipe.get_list_adapters().values()):
		raise LoraNotApplicableError(f'LoRA {lora.name!r} has no weights for any module of this model')
	state.attached[lora.key] = name
	state.names[lora.key] = lora.name
	state.signatures[name] = files.signature(lora)
	return name


def _delete(pipe: DiffusionPipeline, state: AdapterState, name: str) -> None:
	state.active, state.enabled = _UNKNOWN, True
	state.signatures.pop(name, None)
	with warnings.catch_warnings():
		warnings.filterwarnings('ignore', category=UserWarning, module='peft')
		pipe.delete_adapters(name)


def _hotswap(
	pipe: DiffusionPipeline, state: AdapterState, lora: LoraSpec, files: LoraFiles, keep: set[str]
) -> str | None:
	"""Loads `lora` into the least recently used unwanted adapter of the same layout, in place (no new
	modules: several times cheaper than attaching). None if there is no such adapter or the swap fails."""
	signature = files.signature(lora)
	slot = next(
		(key for key in state.attached if key not in keep and state.signatures.get(state.attached[key]) == signature),
		None,
	)
	if slot is None:
		return None
	name = state.attached.pop(slot)
	state.names.pop(slot, None)
	state.active, state.enabled = _UNKNOWN, True
	try:
		with warnings.catch_warnings():
			warnings.filterwarnings('ignore', category=UserWarning, module='peft')
			pipe.load_lora_weights(dict(files.get(lora)), adapter_name=name, hotswap=True)
	except LOAD_ERRORS as exc:
		log.info('hotswapping LoRA %s failed (%s); attaching it instead', lora.name, exc)
		_delete(pipe, state, name)  # its weights may be half replaced
		return None
	state.attached[lora.key] = name
	state.names[lora.key] = lora.name
	return name


def _detach_oldest(pipe: DiffusionPipeline, state: AdapterState, keep: set[str], limit: int) -> None:
	for key in [key for key in state.attached if key not in keep][: max(0, len(state.attached) - limit)]:
		state.names.pop(key, None)
		_delete(pipe, state, state.attached.pop(key))


def apply_loras(
	pipe: DiffusionPipeline, state: AdapterState, loras: list[LoraSpec], files: LoraFiles, max_adapters: int
) -> bool:
	"""Selects exactly `loras` (weight 0 = left out) on `pipe`; returns whether anything had to change.

	The adapters are selected in name order, whatever order the request gave: peft adds their outputs one
	after the other, and float addition is not associative, so a set of LoRAs must have one order to give
	one result."""
	wanted = sorted((lora for lora in loras if lora.weight != 0), key=lambda lora: (lora.name, lora.key))
	keep = {lora.key for lora in wanted}
	names = []
	for lora in wanted:
		name = state.attached.get(lora.key)
		if name is None and len(state.attached) >= max_adapters:
			name = _hotswap(pipe, state, lora, files, keep)
		if name is None:
			name = _attach(pipe, state, lora, files)
		state.attached.move_to_end(lora.key)
		names.append(name)
	_detach_oldest(pipe, state, keep, max_adapters)
	selection = tuple(zip(names, (lora.weight for lora in wanted), strict=True))
	if selection == state.active and state.enabled == bool(selection):
		return False
	if selection:
		pipe.enable_lora()
		pipe.set_adapters([name for name, _ in selection], adapter_weights=[weight for _, weight in selection])
	else:
		pipe.disable_lora()
	state.active, state.enabled = selection, bool(selection)
	return True
