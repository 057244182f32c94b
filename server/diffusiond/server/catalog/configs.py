"""Where a single-file checkpoint's component configs and tokenizer come from, without any network.

A single `.safetensors` holds weights only; diffusers needs each component's config.json and the
tokenizer files beside it. Looked up in order:

1. `<data>/configs/<base>/` (or `<base>-inpainting/`): a diffusers folder without weights
   (model_index.json, */config.json, scheduler/, tokenizer/ [tokenizer_2/]) the user put there;
2. any ready diffusers model in the models folder with the same UNet architecture (cross-attention
   width, input and base channels): its configs and tokenizer are used, never its weights;
3. the Hugging Face cache (`HF_HUB_CACHE`), where diffusers scripts leave the reference repositories
   (stable-diffusion-v1-5, stable-diffusion-2-1, stable-diffusion-xl-base-1.0 and their inpainting
   versions): any snapshot of the matching one that holds the configs;
4. the configs shipped with the daemon (families.py), laid out once in `<data>/configs/.builtin/<name>/`
   with tokenizers made offline from the CLIP vocabulary of the open-clip-torch package.

The first three are overrides: the shipped configs serve every checkpoint of a known family.
"""

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path

from diffusiond.server.catalog.families import FAMILIES
from diffusiond.server.catalog.family_layout import write_family
from diffusiond.server.catalog.probe import probe_folder
from diffusiond.server.catalog.schemas import ModelBase, ModelFormat, ModelInfo, ModelRecord, ModelStatus, is_refiner
from diffusiond.server.catalog.tokenizer_files import TokenizerFilesError

log = logging.getLogger(__name__)
BUILTIN = '.builtin'
BUILTIN_VERSION = '1'  # bump when families.py or the tokenizer files change: the folders are laid out again
_MARKER = 'diffusiond-builtin'
_REQUIRED = ('model_index.json', 'unet/config.json', 'vae/config.json')
# The repositories diffusers itself would fetch configs from (DIFFUSERS_DEFAULT_PIPELINE_PATHS).
HUB_REPOS = {
	'sd1': 'stable-diffusion-v1-5/stable-diffusion-v1-5',
	'sd1-inpainting': 'stable-diffusion-v1-5/stable-diffusion-inpainting',
	'sd2': 'stabilityai/stable-diffusion-2-1',
	'sd2-inpainting': 'stabilityai/stable-diffusion-2-inpainting',
	'sdxl': 'stabilityai/stable-diffusion-xl-base-1.0',
	'sdxl-inpainting': 'diffusers/stable-diffusion-xl-1.0-inpainting-0.1',
	'sdxl-refiner': 'stabilityai/stable-diffusion-xl-refiner-1.0',
}


def is_config_dir(folder: Path) -> bool:
	"""Configs and a tokenizer (an SDXL refiner has only the second one)."""
	tokenizer = (folder / 'tokenizer').exists() or (folder / 'tokenizer_2').exists()
	return tokenizer and all((folder / name).exists() for name in _REQUIRED)


def config_names(record: ModelRecord) -> list[str]:
	if record.base is ModelBase.UNKNOWN:
		return []
	if is_refiner(record.base, record.arch):
		return ['sdxl-refiner']
	return [f'{record.base.value}-inpainting' if record.inpainting else record.base.value]


def hub_snapshots(hub_cache: Path, record: ModelRecord) -> list[Path]:
	"""Snapshots of the reference repository for `record` in a Hugging Face cache, newest first."""
	names = config_names(record)
	repo = HUB_REPOS.get(names[0]) if names else None
	if repo is None:
		return []
	snapshots = hub_cache / f'models--{repo.replace("/", "--")}' / 'snapshots'
	if not snapshots.is_dir():
		return []
	return sorted(snapshots.iterdir(), key=lambda path: path.stat().st_mtime_ns, reverse=True)


def builtin_config_dir(configs_dir: Path, name: str) -> Path | None:
	"""The shipped configs of family `name`, laid out on first use (blocking: call through a thread); None for a
	family not shipped, or when the tokenizer vocabulary is missing (logged: the hint says what to install)."""
	family = FAMILIES.get(name)
	if family is None:
		return None
	target = configs_dir / BUILTIN / name
	marker = target / _MARKER
	if marker.is_file() and marker.read_text() == BUILTIN_VERSION:
		return target
	target.parent.mkdir(parents=True, exist_ok=True)
	scratch = Path(tempfile.mkdtemp(prefix=f'.{name}-', dir=target.parent))
	try:
		write_family(scratch, family)
		(scratch / _MARKER).write_text(BUILTIN_VERSION)
		shutil.rmtree(target, ignore_errors=True)  # an older version, or a half-written one
		scratch.rename(target)
	except TokenizerFilesError as exc:
		log.error('the shipped %s configs cannot be laid out: %s', name, exc)
		return None
	except OSError:
		if not marker.is_file():  # another lookup laid it out meanwhile: that one serves
			raise
	finally:
		shutil.rmtree(scratch, ignore_errors=True)
	return target


def find_config_dir(configs_dir: Path, record: ModelRecord, same_arch: list[Path], hub_cache: Path) -> Path | None:
	"""Blocking file checks: call through a thread."""
	names = config_names(record)
	candidates = [configs_dir / name for name in names] + same_arch + hub_snapshots(hub_cache, record)
	found = next((candidate for candidate in candidates if is_config_dir(candidate)), None)
	if found is not None or not names:
		return found
	return builtin_config_dir(configs_dir, names[0])


def missing_config_hint(configs_dir: Path, record: ModelRecord) -> str:
	names = config_names(record) or ['<name>']
	repo = HUB_REPOS.get(names[0], 'a diffusers model of the same kind')
	return (
		f'single-file checkpoint {record.name!r} ({record.base.value}) needs component configs and tokenizer files, '
		f'which are never downloaded: put a diffusers model of the same kind (e.g. {repo}) into the models '
		f'folder, or copy one without its weights (model_index.json, */config.json, tokenizer/) into '
		f'{configs_dir / names[0]}'
	)


async def locate_configs(
	record: ModelRecord, known: list[ModelRecord], models_dir: Path, configs_dir: Path, hub_cache: Path
) -> tuple[Path | None, int]:
	"""The config folder for single file `record` (None if there is none) and its native size."""
	folders = [
		models_dir / other.path
		for other in known
		if other.format is ModelFormat.DIFFUSERS and other.arch == record.arch and other.status is ModelStatus.READY
	]
	config_dir = await asyncio.to_thread(find_config_dir, configs_dir, record, folders, hub_cache)
	native = record.native_size
	if config_dir is not None and record.base is ModelBase.UNKNOWN:  # no family size: the config says
		native = (await asyncio.to_thread(probe_folder, config_dir)).native_size
	return config_dir, native


def model_info(record: ModelRecord, models_dir: Path, config_dir: Path | None, native_size: int) -> ModelInfo:
	return ModelInfo(
		id=record.id,
		name=record.name,
		path=models_dir / record.path,
		format=record.format,
		base=record.base,
		native_size=native_size,
		demo=record.demo,
		sha256=record.sha256,
		config_dir=config_dir,
		defaults=record.defaults,
		arch=record.arch,
	)
