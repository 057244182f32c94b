"""What an embedding or a VAE file is, from its tensor shapes (the safetensors header; an allowed pickle's shapes
come from the engine, which alone unpickles).

Embeddings, as A1111's `textual_inversion.py` reads them: `string_to_param` (A1111's .pt; `emb_params` in its
.safetensors), `clip_l` + `clip_g` (SDXL), or a single tensor named by its token (diffusers' learned_embeds).
Width 768 is SD1 (CLIP ViT-L), 1024 SD2 (OpenCLIP ViT-H), clip_l + clip_g SDXL. VAEs: the LDM key layout
(`decoder.conv_in`, `decoder.mid.attn_1`) or diffusers' (`decoder.mid_block`), prefixed `first_stage_model.` or
`vae.` when cut out of a checkpoint; the latent channels from `decoder.conv_in`.
"""

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError

from diffusiond.server.catalog.asset_schemas import AssetLayout, AssetProbe
from diffusiond.server.catalog.lora_probe import metadata_base
from diffusiond.server.catalog.probe import PICKLE_SUFFIXES, HeaderError, read_safetensors
from diffusiond.server.catalog.schemas import ModelBase, ModelStatus

_TEXT_BASES = {768: ModelBase.SD1, 1024: ModelBase.SD2}
_VAE_PREFIXES = ('first_stage_model.', 'vae.', '')
MAX_VECTORS = 75  # an embedding must fit one 75-token chunk


def _invalid(problem: str, layout: AssetLayout = AssetLayout.UNKNOWN) -> AssetProbe:
	return AssetProbe(status=ModelStatus.INVALID, problem=problem, layout=layout)


def _vectors(shape: list[int]) -> tuple[int, int]:
	"""(vectors, width) of one embedding tensor: [n, width], or [width] for one vector."""
	return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[-1])


def probe_embedding_shapes(shapes: dict[str, list[int]]) -> AssetProbe:
	if 'clip_l' in shapes and 'clip_g' in shapes:
		(count, width_l), (count_g, width_g) = _vectors(shapes['clip_l']), _vectors(shapes['clip_g'])
		if count != count_g:
			return _invalid(f'clip_l has {count} vectors but clip_g {count_g}', AssetLayout.SDXL)
		found = AssetProbe(layout=AssetLayout.SDXL, width=width_l + width_g, vectors=count)
		found.base = ModelBase.SDXL if (width_l, width_g) == (768, 1280) else ModelBase.UNKNOWN
	else:
		params = [key for key in shapes if key.startswith('string_to_param') or key == 'emb_params']
		tensors = params or list(shapes)
		if len(tensors) != 1 or len(shapes[tensors[0]]) not in (1, 2):
			return _invalid(f'not a textual-inversion embedding: {len(shapes)} tensors ({", ".join(list(shapes)[:4])})')
		count, width = _vectors(shapes[tensors[0]])
		layout = AssetLayout.A1111 if params else AssetLayout.CONCEPT
		found = AssetProbe(layout=layout, width=width, vectors=count, base=_TEXT_BASES.get(width, ModelBase.UNKNOWN))
	if not 1 <= found.vectors <= MAX_VECTORS or found.width < 1:
		return _invalid(f'{found.vectors} vectors of width {found.width}: an embedding holds 1..{MAX_VECTORS}')
	return found


def probe_vae_shapes(shapes: dict[str, list[int]]) -> AssetProbe:
	for prefix in _VAE_PREFIXES:
		conv_in = shapes.get(f'{prefix}decoder.conv_in.weight')
		if conv_in is None or len(conv_in) != 4:
			continue
		diffusers = any(key.startswith(f'{prefix}decoder.mid_block.') for key in shapes)
		ldm = any(key.startswith(f'{prefix}decoder.mid.') for key in shapes)
		if not (diffusers or ldm):
			break
		layout = AssetLayout.DIFFUSERS if diffusers else AssetLayout.LDM
		return AssetProbe(layout=layout, width=conv_in[1])
	return _invalid('not a VAE: no decoder.conv_in / decoder.mid weights (a full checkpoint belongs in models/)')


def pickle_probe(path: Path) -> AssetProbe | None:
	"""The probe of a pickle file until it is opened (where allowed); None for a file that is not one."""
	if path.suffix.lower() not in PICKLE_SUFFIXES:
		return None
	problem = 'pickle file: it can run code when loaded; use its .safetensors version, or allow pickles'
	return AssetProbe(status=ModelStatus.UNSAFE, problem=problem, pickle=True)


def probe_asset_file(path: Path, vae: bool) -> AssetProbe:
	"""An embedding's (`vae` False) or a VAE's probe."""
	found = pickle_probe(path)
	if found is not None:
		return found
	try:
		header = read_safetensors(path)
	except (OSError, HeaderError) as exc:
		return _invalid(str(exc))
	found = probe_vae_shapes(header.shapes) if vae else probe_embedding_shapes(header.shapes)
	if found.base is ModelBase.UNKNOWN and found.status is ModelStatus.READY:  # shapes cannot tell SD1/SD2/SDXL VAEs
		found.base = metadata_base(header.metadata)
	return found


_CONTEXT_BASES = {768: ModelBase.SD1, 1024: ModelBase.SD2, 2048: ModelBase.SDXL}


class _ControlNetConfig(BaseModel):
	cross_attention_dim: Annotated[int, Field(ge=1, le=1 << 20)] = 768


def probe_controlnet_file(path: Path) -> AssetProbe:
	"""A ControlNet in diffusers' layout: its weights with config.json beside them (a diffusers folder)."""
	found = pickle_probe(path)
	if found is not None:
		return found
	try:
		keys = read_safetensors(path).shapes
	except (OSError, HeaderError) as exc:
		return _invalid(str(exc))
	if any(key.startswith('control_model.') for key in keys):  # the original (A1111) layout: its model's shape
		width = next((shape[1] for key, shape in keys.items() if key.endswith('attn2.to_k.weight')), 0)
		return AssetProbe(layout=AssetLayout.LDM, width=width, base=_CONTEXT_BASES.get(width, ModelBase.UNKNOWN))
	if not any(key.startswith('controlnet_cond_embedding.') for key in keys):
		return _invalid('not a ControlNet: no controlnet_cond_embedding weights')
	try:
		config = _ControlNetConfig.model_validate_json((path.parent / 'config.json').read_bytes())
	except (OSError, ValidationError) as exc:
		return _invalid(f'a diffusers ControlNet needs its config.json beside the weights: {str(exc)[:200]}')
	width = config.cross_attention_dim
	return AssetProbe(layout=AssetLayout.DIFFUSERS, width=width, base=_CONTEXT_BASES.get(width, ModelBase.UNKNOWN))
