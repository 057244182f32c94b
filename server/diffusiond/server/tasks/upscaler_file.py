"""A model of the upscalers folder as a job carries it (UpscaleImage, a hires fix's upscaler)."""

from pydantic import BaseModel, ConfigDict


class UpscalerFile(BaseModel):
	"""A model of the upscalers folder, as the engine loads it."""

	model_config = ConfigDict(frozen=True)

	id: str
	name: str
	path: str  # absolute
	key: str  # changes when the file changes (the engine's cache key)
	scale: int
	architecture: str
	pickle: bool = False
