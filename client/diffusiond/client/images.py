"""Generated images as returned by the clients."""

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb

_SUFFIXES = {'image/png': '.png', 'image/jpeg': '.jpg', 'image/webp': '.webp'}


@dataclass(frozen=True)
class GeneratedImage:
	index: int
	seed: int
	data: bytes
	mime_type: str
	width: int
	height: int
	job_id: str

	@classmethod
	def from_event(cls, event: gen_pb.GenerateEvent) -> 'GeneratedImage':
		image = event.image
		return cls(image.index, image.seed, image.data, image.mime_type, image.width, image.height, event.job_id)

	@property
	def suffix(self) -> str:
		return _SUFFIXES.get(self.mime_type, '.bin')

	def save(self, path: str | Path) -> Path:
		target = Path(path)
		target.write_bytes(self.data)
		return target

	def to_pil(self) -> Image.Image:
		"""The image decoded with Pillow (fully loaded, so the bytes are not kept open)."""
		image = Image.open(io.BytesIO(self.data))
		image.load()
		return image
