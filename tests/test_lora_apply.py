"""The adapter bookkeeping on one real tiny pipeline: repeats cost nothing, limits hold, files are cached."""

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from diffusers import StableDiffusionPipeline

from diffusiond.server.engine.demo import build_pipeline
from diffusiond.server.engine.lora_apply import AdapterState, LoraFiles, apply_loras
from diffusiond.server.errors import LoraNotApplicableError
from diffusiond.server.schemas import LoraSpec
from tests.lora_files import write_tiny_lora


def _spec(path: Path, weight: float) -> LoraSpec:
	return LoraSpec(id=path.stem, name=path.stem, path=path, weight=weight, short_hash='', key=path.stem)


def test_repeats_are_free_and_old_adapters_are_detached(tmp_path: Path) -> None:
	pipe = build_pipeline()
	files = LoraFiles(max_bytes=1 << 30)
	state = AdapterState()
	paths = [write_tiny_lora(tmp_path / f'l{index}.safetensors', seed=index) for index in range(3)]
	assert apply_loras(pipe, state, [], files, 2) is False  # nothing attached, nothing to do
	assert apply_loras(pipe, state, [_spec(paths[0], 1.0)], files, 2) is True
	assert apply_loras(pipe, state, [_spec(paths[0], 1.0)], files, 2) is False  # the same set: not re-applied
	assert apply_loras(pipe, state, [_spec(paths[0], 0.5)], files, 2) is True  # new weight: reselected only
	assert apply_loras(pipe, state, [_spec(paths[1], 1.0), _spec(paths[2], 1.0)], files, 2) is True
	assert list(state.attached) == ['l1', 'l2'], 'beyond two adapters the least recently used is detached'
	assert sorted(pipe.get_list_adapters()['unet']) == sorted(state.attached.values())
	assert apply_loras(pipe, state, [_spec(paths[1], 0.0)], files, 2) is True  # weight 0 = none selected
	assert state.enabled is False


def test_the_parsed_file_cache_is_bounded(tmp_path: Path) -> None:
	paths = [write_tiny_lora(tmp_path / f'l{index}.safetensors', seed=index) for index in range(3)]
	one = LoraFiles(max_bytes=1).get(_spec(paths[0], 1.0))
	files = LoraFiles(max_bytes=sum(t.numel() * t.element_size() for t in one.values()) + 1)
	first = files.get(_spec(paths[0], 1.0))
	assert files.get(_spec(paths[0], 1.0)) is first, 'a second use does not read the file again'
	files.get(_spec(paths[1], 1.0))
	assert files.get(_spec(paths[0], 1.0)) is not first, 'the oldest file was dropped to stay within the bound'
	(tmp_path / 'broken.safetensors').write_bytes(b'junk')
	with pytest.raises(LoraNotApplicableError, match='could not be read'):
		files.get(_spec(tmp_path / 'broken.safetensors', 1.0))


def _render(pipe: StableDiffusionPipeline) -> npt.NDArray[np.float32]:
	result = pipe(
		'a fox',
		width=64,
		height=64,
		num_inference_steps=2,
		generator=torch.Generator().manual_seed(3),
		output_type='np',
	)
	images: npt.NDArray[np.float32] = result.images
	return images


def test_a_hotswapped_lora_equals_a_freshly_attached_one(tmp_path: Path) -> None:
	paths = [write_tiny_lora(tmp_path / f'l{index}.safetensors', seed=index) for index in range(2)]
	files = LoraFiles(max_bytes=1 << 30)
	swapped, state = build_pipeline(), AdapterState()
	swapped.set_progress_bar_config(disable=True)
	apply_loras(swapped, state, [_spec(paths[0], 1.0)], files, 1)
	slot = state.attached['l0']
	apply_loras(swapped, state, [_spec(paths[1], 0.7)], files, 1)
	assert dict(state.attached) == {'l1': slot}, "the second LoRA took the first one's adapter in place"
	fresh, fresh_state = build_pipeline(), AdapterState()
	fresh.set_progress_bar_config(disable=True)
	apply_loras(fresh, fresh_state, [_spec(paths[1], 0.7)], files, 1)
	assert np.array_equal(_render(swapped), _render(fresh))
	apply_loras(swapped, state, [], files, 1)
	apply_loras(fresh, fresh_state, [], files, 1)
	bare = build_pipeline()
	bare.set_progress_bar_config(disable=True)
	assert np.array_equal(_render(swapped), _render(bare)), 'no residue after a hotswap either'
