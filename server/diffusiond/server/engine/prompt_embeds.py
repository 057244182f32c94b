"""Prompt embeddings as A1111 makes them: each 75-token chunk encoded on its own, every token's output scaled by
its attention weight with the chunk's mean restored (A1111's "Original" emphasis), the chunks concatenated.

For a prompt of one chunk without weights this is exactly what diffusers' own `encode_prompt` computes (the same
token ids, the same encoder call; a weight of 1 and a mean ratio of 1 change no bit), so plain prompts keep the
pixels of a direct diffusers call. SD2 and SDXL's second encoder pad after the end token with their own pad
token; SDXL concatenates the penultimate layers of both encoders and takes the pooled embedding of the first
chunk. `clip_skip` counts as A1111 does: 1 = the last layer. Textual-inversion vectors take the places the
chunks' fixes say (engine/embeddings.py).
"""

import torch
from diffusers import DiffusionPipeline
from pydantic import BaseModel, ConfigDict
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from diffusiond.server.engine.embeddings import Placed, placed, vectors_in
from diffusiond.server.engine.tensor_files import Tensors
from diffusiond.server.errors import FailedPreconditionError
from diffusiond.server.prompting.chunks import Chunk, PromptTokens, empty_chunk
from diffusiond.server.prompting.tokens import PromptTokenizer
from diffusiond.server.schemas import JobSpec


class Vectors(BaseModel):
	"""The embeddings' vectors by name, and which encoder's part of them is wanted."""

	model_config = ConfigDict(arbitrary_types_allowed=True)

	by_name: dict[str, Tensors]
	part: str


def _padded(chunks: list[Chunk], count: int, start: int, end: int) -> list[Chunk]:
	"""`chunks` made `count` long with empty chunks (what an empty prompt encodes as)."""
	return chunks + [empty_chunk(start, end)] * (count - len(chunks))


def _ids(chunk: Chunk, end: int, pad: int) -> list[int]:
	if pad == end:
		return chunk.tokens
	first_end = chunk.tokens.index(end)  # after the chunk's end token, the encoder's own pad token
	return chunk.tokens[: first_end + 1] + [pad] * (len(chunk.tokens) - first_end - 1)


def _encode_chunk(
	encoder: CLIPTextModel | CLIPTextModelWithProjection, ids: list[int], layer: int, norm: bool, fixes: Placed
) -> tuple[torch.Tensor, torch.Tensor | None]:
	"""One chunk's hidden states (`layer` from the end, 1 = last) and, for a projecting encoder, its pooled output."""
	device = encoder.device
	layers = int(encoder.config.num_hidden_layers)
	if layer > layers:
		raise FailedPreconditionError(
			f'clip skip reaches layer {layer} from the end, but this text encoder has {layers} layers; use a smaller '
			'clip_skip'
		)
	with vectors_in(encoder, fixes):
		output = encoder(torch.tensor([ids], device=device), output_hidden_states=layer > 1)
	pooled = output.text_embeds if isinstance(encoder, CLIPTextModelWithProjection) else None
	if layer <= 1:
		return output.last_hidden_state, pooled
	hidden: torch.Tensor = output.hidden_states[-layer]
	if not norm:
		return hidden, pooled
	model = getattr(encoder, 'text_model', encoder)  # transformers 5 flattened CLIPTextModel
	normed: torch.Tensor = model.final_layer_norm(hidden)
	return normed, pooled


def _weighted(z: torch.Tensor, weights: list[float]) -> torch.Tensor:
	if all(weight == 1.0 for weight in weights):
		return z
	original = z.mean()
	z = z * torch.tensor(weights, dtype=z.dtype, device=z.device).reshape(1, -1, 1)
	return z * (original / z.mean())


def _encode(
	encoder: CLIPTextModel | CLIPTextModelWithProjection,
	chunks: list[Chunk],
	end: int,
	pad: int,
	layer: int,
	norm: bool,
	vectors: Vectors,
) -> tuple[torch.Tensor, torch.Tensor | None]:
	parts, pooled = [], None
	for index, chunk in enumerate(chunks):
		fixes = placed(chunk.fixes, vectors.by_name, vectors.part)
		z, chunk_pooled = _encode_chunk(encoder, _ids(chunk, end, pad), layer, norm, fixes)
		parts.append(_weighted(z, chunk.weights))
		pooled = chunk_pooled if index == 0 else pooled
	return torch.cat(parts, dim=1), pooled


def job_tokens(pipe: DiffusionPipeline, spec: JobSpec) -> PromptTokens:
	"""The spec's chunks, or the engine's own for a spec made without them."""
	if spec.tokens is not None:
		return spec.tokens
	return PromptTokenizer(pipe.tokenizer or pipe.tokenizer_2).tokens(spec.prompt, spec.negative_prompt)


def embed(
	pipe: DiffusionPipeline,
	tokens: PromptTokens,
	negative_empty: bool,
	count: int,
	clip_skip: int = 1,
	embeddings: dict[str, Tensors] | None = None,
) -> dict[str, torch.Tensor]:
	"""The keyword arguments that give `pipe` one job's prompts as embeddings, `count` chunks long.
	`embeddings`: the vectors of the textual-inversion embeddings the chunks' fixes name."""
	sdxl = getattr(pipe, 'text_encoder_2', None) is not None
	layer, norm = (clip_skip + 1, False) if sdxl else (clip_skip, True)
	found: dict[str, list[torch.Tensor]] = {'prompt': [], 'negative': []}
	pooled: dict[str, torch.Tensor] = {}
	for name in ('', '_2'):
		encoder, tokenizer = getattr(pipe, f'text_encoder{name}', None), getattr(pipe, f'tokenizer{name}', None)
		if encoder is None or tokenizer is None:
			continue
		start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
		vectors = Vectors(by_name=embeddings or {}, part=('clip_g' if name else 'clip_l') if sdxl else '')
		for side, chunked in (('prompt', tokens.prompt), ('negative', tokens.negative)):
			chunks = _padded(chunked.chunks, count, start, end)
			z, side_pooled = _encode(encoder, chunks, end, pad, layer, norm, vectors)
			found[side].append(z)
			if side_pooled is not None:
				pooled[side] = side_pooled
	dtype = (pipe.text_encoder or pipe.text_encoder_2).dtype
	prompt = torch.cat(found['prompt'], dim=-1).to(dtype)
	embeds = {'prompt_embeds': prompt, 'negative_prompt_embeds': torch.cat(found['negative'], dim=-1).to(dtype)}
	if sdxl:
		embeds['pooled_prompt_embeds'] = pooled['prompt'].to(dtype)
		embeds['negative_pooled_prompt_embeds'] = pooled['negative'].to(dtype)
		if negative_empty and pipe.config.get('force_zeros_for_empty_prompt', False):  # what diffusers does
			embeds['negative_prompt_embeds'] = torch.zeros_like(prompt)
			embeds['negative_pooled_prompt_embeds'] = torch.zeros_like(embeds['pooled_prompt_embeds'])
	return embeds


def prompt_kwargs(
	pipe: DiffusionPipeline, specs: list[JobSpec], vectors: list[dict[str, Tensors]]
) -> dict[str, torch.Tensor | int]:
	"""The prompts as embeddings (prompt_embeds.py). One job: one row, repeated per image by diffusers. A batch:
	one row per image (the jobs of a batch have the same chunk counts; batching.py)."""
	tokens = [job_tokens(pipe, spec) for spec in specs]
	count = max(max(found.shape) for found in tokens)
	skip = specs[0].clip_skip  # the same for every job of a batch
	rows = [
		embed(pipe, found, not spec.negative_prompt, count, skip, spec_vectors)
		for spec, found, spec_vectors in zip(specs, tokens, vectors, strict=True)
	]
	if len(specs) == 1:
		return {**rows[0], 'num_images_per_prompt': len(specs[0].seeds)}
	repeated = [row for spec, row in zip(specs, rows, strict=True) for _ in spec.seeds]
	return {key: torch.cat([row[key] for row in repeated]) for key in rows[0]} | {'num_images_per_prompt': 1}
