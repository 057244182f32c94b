"""Textual-inversion vectors, placed as A1111 places them (`EmbeddingsWithFixes`): the prompt's chunk holds
placeholder tokens where an embedding is named (prompting/chunks.py); while that chunk is encoded, a forward hook
on the encoder's token embedding replaces their outputs with the embedding's vectors, before the position
embeddings are added. Nothing in the model changes, so a prompt without embeddings gives exactly the pixels of
the bare model, whatever ran before. Vectors are read once per file and kept (a few KiB each).
"""

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from diffusiond.server.engine.tensor_files import Tensors, read_tensors
from diffusiond.server.errors import AssetNotApplicableError
from diffusiond.server.prompting.chunks import Fix
from diffusiond.server.schemas import AssetSpec

_KEPT = 256  # embeddings whose vectors stay read


def vectors_of(tensors: Tensors, name: str) -> Tensors:
	"""The file's vectors per text encoder: '' for SD1/SD2, 'clip_l' and 'clip_g' for SDXL (as A1111 reads)."""
	if 'clip_l' in tensors and 'clip_g' in tensors:
		return {'clip_l': tensors['clip_l'], 'clip_g': tensors['clip_g']}
	params = [key for key in tensors if key.startswith('string_to_param') or key == 'emb_params']
	keys = params or list(tensors)
	if len(keys) != 1:
		raise AssetNotApplicableError(f'embedding {name!r} holds {len(keys)} tensors, not one embedding')
	vectors = tensors[keys[0]]
	return {'': vectors.unsqueeze(0) if vectors.dim() == 1 else vectors}


class EmbeddingVectors:
	def __init__(self, allow_pickle: bool) -> None:
		self._allow_pickle = allow_pickle
		self._read: OrderedDict[str, Tensors] = OrderedDict()

	def of(self, spec: AssetSpec) -> Tensors:
		found = self._read.get(spec.key)
		if found is None:
			found = vectors_of(read_tensors(spec.path, self._allow_pickle), spec.name)
			self._read[spec.key] = {part: vectors.detach().float() for part, vectors in found.items()}
			while len(self._read) > _KEPT:
				self._read.popitem(last=False)
		self._read.move_to_end(spec.key)
		return self._read[spec.key]


Placed = list[tuple[int, torch.Tensor]]  # (offset of the first vector among the chunk's tokens, vectors)


def placed(fixes: list[Fix], vectors: dict[str, Tensors], part: str) -> Placed:
	"""A chunk's fixes as vectors for one encoder (`part`: '', 'clip_l' or 'clip_g')."""
	found = []
	for fix in fixes:
		tensors = vectors[fix.embedding]
		found.append((fix.offset, tensors.get(part, tensors.get(''))))
	return [(offset, tensor) for offset, tensor in found if tensor is not None]


@contextmanager
def vectors_in(encoder: CLIPTextModel | CLIPTextModelWithProjection, fixes: Placed) -> Iterator[None]:
	"""While encoding one chunk: the token embeddings at the fixes' places are the embeddings' vectors."""
	if not fixes:
		yield
		return

	def replace(module: torch.nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
		out = output.clone()
		for offset, vectors in fixes:
			if vectors.shape[-1] != out.shape[-1]:
				raise AssetNotApplicableError(
					f'an embedding of width {vectors.shape[-1]} does not fit a text encoder of width {out.shape[-1]}'
				)
			count = min(out.shape[1] - offset - 1, vectors.shape[0])
			out[:, offset + 1 : offset + 1 + count] = vectors[:count].to(out.device, out.dtype)
		return out

	handle = encoder.get_input_embeddings().register_forward_hook(replace)
	try:
		yield
	finally:
		handle.remove()
