"""A job's embeddings and VAE, resolved at intake: the embeddings its prompts name (matched on tokens by the
tokenizer, prompting/words.py) and the VAE it asks for or its model's default, each checked to suit the model."""

import logging
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from diffusiond.server.catalog.asset_schemas import AssetRecord
from diffusiond.server.catalog.assets import EmbeddingCatalog, VaeCatalog
from diffusiond.server.catalog.controlnets import ControlNetCatalog
from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.catalog.upscalers import UpscalerCatalog
from diffusiond.server.errors import AssetNotApplicableError, VaeNotFoundError
from diffusiond.server.prompting.chunks import PromptTokens
from diffusiond.server.prompting.tokens import Names
from diffusiond.server.schemas import AssetSpec

log = logging.getLogger(__name__)
OWN_VAE = 'none'  # GenerateRequest.vae: the model's own VAE even where the model has a default one


class Vocabulary(BaseModel):
	"""The embeddings a prompt may name, by their word (the file's stem; the first by name where stems repeat)."""

	by_word: dict[str, AssetRecord]

	@property
	def names(self) -> Names:
		return tuple((word, max(record.probe.vectors, 1)) for word, record in self.by_word.items())


def asset_spec(record: AssetRecord, name: str, folder: Path) -> AssetSpec:
	return AssetSpec(
		id=record.id,
		name=name,
		file=PurePosixPath(record.path).name,
		path=folder / record.path,
		key=record.key,
		sha256=record.sha256 or '',
		vectors=record.probe.vectors,
	)


class JobAssets:
	def __init__(
		self, embeddings: EmbeddingCatalog, vaes: VaeCatalog, controlnets: ControlNetCatalog, upscalers: UpscalerCatalog
	) -> None:
		self.embeddings = embeddings
		self.vaes = vaes
		self.controlnets = controlnets
		self.upscalers = upscalers

	async def vocabulary(self) -> Vocabulary:
		by_word: dict[str, AssetRecord] = {}
		for record in await self.embeddings.named():
			by_word.setdefault(PurePosixPath(record.name).name, await self.embeddings.opened(record))
		return Vocabulary(by_word=by_word)

	def embedding_specs(self, tokens: PromptTokens | None, vocabulary: Vocabulary, model: ModelInfo) -> list[AssetSpec]:
		"""The embeddings the prompts name, each checked to suit `model` (FAILED_PRECONDITION naming both)."""
		found = []
		for word in tokens.embeddings if tokens is not None else []:
			record = vocabulary.by_word[word]
			self.embeddings.check_usable(record, model)
			found.append(asset_spec(record, word, self.embeddings.folder))
		return found

	async def vae(self, ref: str, model: ModelInfo) -> tuple[AssetSpec | None, list[str]]:
		"""The VAE the request names, else the model's default; None = the model's own. A default that is gone
		or unusable (its file deleted) falls back to the model's own VAE, with a notice for the job; a VAE the
		request names is refused instead."""
		default = not ref
		ref = ref or model.defaults.vae or ''
		if not ref or ref.lower() == OWN_VAE:
			return None, []
		try:
			record = await self.vaes.resolve(ref, model)
		except (VaeNotFoundError, AssetNotApplicableError) as error:
			if not default:
				raise
			log.warning('model %s: default VAE not used: %s', model.name, error.message)
			return None, [f"the model's default VAE {ref!r} cannot be used ({error.message}); its own VAE decoded"]
		return asset_spec(record, record.name, self.vaes.folder), []
