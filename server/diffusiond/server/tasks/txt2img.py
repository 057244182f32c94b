"""Text to image: the prompt alone. The one task that batches (jobs/batching.py)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from diffusiond.server.errors import FieldViolation
from diffusiond.server.tasks.sources import Sources


class Txt2ImgRequest(BaseModel):
	model_config = ConfigDict(frozen=True)

	kind: Literal['txt2img'] = 'txt2img'
	misplaced: list[FieldViolation] = Field(default_factory=list)  # image-task fields sent without an image

	def inpaints(self) -> bool:
		"""Whether the job needs an inpainting model's masked input (a 9-channel model runs nothing else)."""
		return False

	def from_noise(self) -> bool:
		"""Whether the job starts from noise (which an SDXL refiner cannot)."""
		return True

	def violations(self) -> list[FieldViolation]:
		return list(self.misplaced)

	def sources(self, max_pixels: int) -> Sources | None:
		return None

	def task(self, sources: Sources | None, width: int, height: int) -> 'Txt2Img':
		return Txt2Img()


class Txt2Img(BaseModel):
	model_config = ConfigDict(frozen=True)

	kind: Literal['txt2img'] = 'txt2img'

	def progress_steps(self, steps: int) -> int:
		return steps

	def batches(self) -> bool:
		"""Whether jobs of this task may share one pipeline call with others of the same shape."""
		return True

	def unstored(self) -> str | None:
		return None

	def infotext(self) -> list[tuple[str, str]]:
		return []

	def extras(self) -> list[tuple[str, str]]:
		"""Infotext fields A1111 writes after clip skip (its extra_generation_params)."""
		return []

	def output_size(self, width: int, height: int) -> tuple[int, int]:
		"""The images' size for a job of this size."""
		return width, height

	def work(self, steps: int, width: int, height: int) -> float:
		"""What one image costs, in step-pixels (jobs/estimate.py)."""
		return float(steps * width * height)

	def without_sources(self) -> 'Txt2Img':
		return self

	def violations(self, prefix: str) -> list[FieldViolation]:
		return []

	def repaired(self) -> 'Txt2Img':
		return self
