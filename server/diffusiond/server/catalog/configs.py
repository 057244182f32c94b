"""Where a single-file checkpoint's component configs and tokenizer come from, without any network.

A single `.safetensors` holds weights only; diffusers needs each component's config.json and the
tokenizer files beside it. Looked up in order:

1. `<data>/configs/<base>/` (or `<base>-inpainting/`): a diffusers folder without weights
   (model_index.json, */config.json, scheduler/, tokenizer/ [tokenizer_2/]) the user put there;
2. any ready diffusers model in the models folder with the same UNet architecture (cross-attention
   width, input and base channels): its configs and tokenizer are used, never its weights.
"""

from pathlib import Path

from diffusiond.server.catalog.schemas import ModelBase, ModelRecord

_REQUIRED = ('model_index.json', 'unet/config.json', 'vae/config.json', 'tokenizer')


def is_config_dir(folder: Path) -> bool:
	return all((folder / name).exists() for name in _REQUIRED)


def config_names(record: ModelRecord) -> list[str]:
	if record.base is ModelBase.UNKNOWN:
		return []
	return [f'{record.base.value}-inpainting' if record.inpainting else record.base.value]


def find_config_dir(configs_dir: Path, record: ModelRecord, same_arch: list[Path]) -> Path | None:
	for candidate in [configs_dir / name for name in config_names(record)] + same_arch:
		if is_config_dir(candidate):
			return candidate
	return None


def missing_config_hint(configs_dir: Path, record: ModelRecord) -> str:
	names = config_names(record) or ['<name>']
	return (
		f'single-file checkpoint {record.name!r} ({record.base.value}) needs component configs and tokenizer files, '
		'which are never downloaded: put a diffusers model of the same kind into the models folder, or copy one '
		f'without its weights (model_index.json, */config.json, tokenizer/) into {configs_dir / names[0]}'
	)
