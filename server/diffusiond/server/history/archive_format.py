"""The archive format: a zip of JSON documents (styles, catalog metadata, history) and optional images.

Since version 2 the history is `generations.jsonl` (one record a line), so neither writing nor reading an
archive holds the whole history in memory; version 1 archives (`generations.json`) are still read. Version
3 records state their task (`spec.task`); those of versions 1 and 2 are read in that layout.
Images are stored (not deflated) under `images/<outputs path>`.
"""

from pydantic import BaseModel, Field

FORMAT = 'diffusiond-archive'
VERSION = 3  # 3: job specs state their task (tasks/); 1 and 2 are read through tasks/legacy.py
MANIFEST = 'manifest.json'
SMALL_DOCUMENTS = ('styles.json', 'models.json', 'loras.json')
GENERATIONS_V1 = 'generations.json'
GENERATIONS = 'generations.jsonl'
DOCUMENTS = (MANIFEST, *SMALL_DOCUMENTS, GENERATIONS_V1, GENERATIONS)
IMAGES = 'images/'


class Manifest(BaseModel):
	format: str
	version: int


class StyleEntry(BaseModel):
	name: str
	prompt: str = ''
	negative_prompt: str = ''
	description: str = ''
	tags: list[str] = Field(default_factory=list)


class ModelEntry(BaseModel):
	name: str
	sha256: str | None = None
	display_name: str = ''
	tags: list[str] = Field(default_factory=list)
	default_sampler: str | None = None  # a Sampler member name (EULER_A)
	default_steps: int | None = None
	default_guidance: float | None = None
	default_clip_skip: int | None = None
	default_schedule: str | None = None  # a Schedule member name (SGM_UNIFORM)


class LoraEntry(BaseModel):
	name: str
	sha256: str | None = None
	display_name: str = ''
	tags: list[str] = Field(default_factory=list)
	trigger_words: list[str] | None = None  # None: the suggested ones
	default_weight: float = 1.0
	enabled: bool = True
	note: str = ''


class CatalogContents(BaseModel):
	"""The small documents: styles and the user's metadata of models and LoRAs."""

	styles: list[StyleEntry] = Field(default_factory=list)
	models: list[ModelEntry] = Field(default_factory=list)
	loras: list[LoraEntry] = Field(default_factory=list)
