"""What the embeddings, VAE and ControlNet catalogs share (catalog/assets.py, catalog/controlnets.py): the walk, the
probe guard, hashing, opening an allowed pickle once, and `check_usable` against a model."""

from collections.abc import Awaitable, Callable
from pathlib import Path

from diffusiond.server.catalog.asset_probe import (
	probe_asset_file,
	probe_embedding_shapes,
	probe_vae_shapes,
)
from diffusiond.server.catalog.asset_schemas import AssetProbe, AssetRecord
from diffusiond.server.catalog.file_catalog import Noun
from diffusiond.server.catalog.files import walk
from diffusiond.server.catalog.hasher import HashTask
from diffusiond.server.catalog.probe import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES
from diffusiond.server.catalog.rescan import guarded
from diffusiond.server.catalog.schemas import FileStamp, ModelBase, ModelFormat, ModelInfo, ModelStatus
from diffusiond.server.errors import (
	AssetNotApplicableError,
)

PickleShapes = Callable[[Path], Awaitable[dict[str, list[int]]]]  # an allowed pickle's tensor shapes (the engine)
EMBEDDINGS = Noun(field='embedding', one='embedding', many='embeddings')
VAES = Noun(field='vae', one='VAE', many='VAEs')
CONTROLNETS = Noun(field='controlnet', one='ControlNet', many='ControlNets')
SUFFIXES = SAFETENSORS_SUFFIXES | PICKLE_SUFFIXES


async def no_pickles(path: Path) -> dict[str, list[int]]:
	return {}


class AssetRules:
	"""What the three catalogs share (a mixin before FileCatalog); `vae` says which one this is."""

	vae = False
	folder: Path
	noun: Noun
	allow_pickle: bool = False
	_open_pickle: PickleShapes = staticmethod(no_pickles)

	def _walk(self) -> list[FileStamp]:
		return walk(self.folder, SUFFIXES, False)

	def _probe(self, stamp: FileStamp) -> AssetProbe:
		if stamp.problem:
			return AssetProbe(status=ModelStatus.INVALID, problem=stamp.problem)
		path = self.folder / stamp.path
		return guarded(lambda: probe_asset_file(path, self.vae), path, AssetProbe, ModelFormat.SAFETENSORS)

	def _hash_task(self, record: AssetRecord) -> HashTask | None:
		if record.sha256 or record.probe.status is ModelStatus.INVALID:
			return None
		return HashTask(record_id=record.id, name=record.name, root=self.folder, path=record.path)

	async def _store_probe(self, record: AssetRecord, probe: AssetProbe) -> None:
		raise NotImplementedError

	async def opened(self, record: AssetRecord) -> AssetRecord:
		"""`record`, its pickle opened first where pickles are allowed (once: the probe is stored)."""
		if not (record.probe.pickle and self.allow_pickle and record.probe.status is ModelStatus.UNSAFE):
			return record
		shapes = await self._open_pickle(self.folder / record.path)
		probe = probe_vae_shapes(shapes) if self.vae else probe_embedding_shapes(shapes)
		probe = probe.model_copy(update={'pickle': True})
		await self._store_probe(record, probe)
		return record.model_copy(update={'probe': probe})

	def check_usable(self, record: AssetRecord, model: ModelInfo) -> None:
		"""FAILED_PRECONDITION unless `record` can be used with `model`."""
		probe, noun = record.probe, self.noun
		meta = {noun.field: record.name, 'model': model.name}
		if probe.status is ModelStatus.UNSAFE:
			raise AssetNotApplicableError(
				f'{noun.one} {record.name!r} is a pickle file, which can run code when loaded; use its .safetensors '
				'version, or set DIFFUSIOND_MODELS__ALLOW_PICKLE=true to load it with weights_only=True',
				metadata=meta,
			)
		if probe.status is not ModelStatus.READY:
			raise AssetNotApplicableError(f'{noun.one} {record.name!r} cannot be used: {probe.problem}', metadata=meta)
		if self._mismatch(probe, model):
			raise AssetNotApplicableError(
				f'{noun.one} {record.name!r} was made for {_made_for(probe, self.vae)} but model {model.name!r} is '
				f'{_model_kind(model, self.vae)}; pick one made for that base',
				metadata=meta,
			)

	def _mismatch(self, probe: AssetProbe, model: ModelInfo) -> bool:
		"""Made for another base, or (where the bases are not known) for another cross-attention width."""
		known = ModelBase.UNKNOWN not in (probe.base, model.base)
		width = model.arch.cross_attention_dim
		return (known and probe.base is not model.base) or bool(width and probe.width != width)


def _made_for(probe: AssetProbe, vae: bool) -> str:
	if vae:
		return f'{probe.width} latent channels'
	if probe.base is not ModelBase.UNKNOWN:
		return probe.base.name
	return f'a text encoder of width {probe.width}'


def _model_kind(model: ModelInfo, vae: bool) -> str:
	if vae:
		return f'{LATENT_CHANNELS} latent channels (a Stable Diffusion VAE)'
	if model.base is not ModelBase.UNKNOWN:
		return model.base.name
	return f'of text width {model.arch.cross_attention_dim or "?"}'


LATENT_CHANNELS = 4  # every SD1, SD2 and SDXL VAE
