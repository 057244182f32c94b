"""What the store keeps about a textual-inversion embedding or a VAE: one file in its folder, probed from its
tensor shapes alone (catalog/asset_probe.py)."""

import enum
from datetime import datetime

from pydantic import BaseModel

from diffusiond.server.catalog.schemas import FileStamp, ModelBase, ModelStatus

TI_HASH_LENGTH = 12  # A1111's "TI hashes": the first 12 hex characters of the file's sha256
VAE_HASH_LENGTH = 10  # A1111's "VAE hash": the first 10
CONTROLNET_HASH_LENGTH = 8  # A1111's ControlNet extension names a model "name [hash8]"


class AssetLayout(enum.Enum):
	"""How the tensors are laid out in the file."""

	UNKNOWN = 'unknown'
	A1111 = 'a1111'  # an embedding as A1111 trains it: string_to_param (in .pt) or emb_params (in .safetensors)
	CONCEPT = 'concept'  # an embedding of diffusers' textual inversion: one tensor named by its token
	SDXL = 'sdxl'  # an SDXL embedding: clip_l and clip_g
	LDM = 'ldm'  # a VAE in the original (LDM) key layout, as A1111's models/VAE files are
	DIFFUSERS = 'diffusers'  # a VAE in diffusers' key layout (a diffusion_pytorch_model file or folder)


class AssetProbe(BaseModel):
	status: ModelStatus = ModelStatus.READY
	problem: str = ''
	layout: AssetLayout = AssetLayout.UNKNOWN
	base: ModelBase = ModelBase.UNKNOWN
	pickle: bool = False  # a .pt/.bin/.ckpt file: used only where pickles are allowed, with weights_only=True
	width: int = 0  # embedding: the text-encoder width it is for (SDXL: clip_l + clip_g); VAE: latent channels
	vectors: int = 0  # embedding: the tokens it takes in a prompt


class AssetRecord(BaseModel):
	id: str
	name: str  # the file's path without its suffix: the word a prompt names an embedding by
	path: str  # relative to its folder
	probe: AssetProbe
	size_bytes: int
	mtime_ns: int
	sha256: str | None
	added_at: datetime
	last_used_at: datetime | None

	def short_hash(self, length: int) -> str:
		return self.sha256[:length] if self.sha256 else ''

	@property
	def key(self) -> str:
		"""Changes when the file changes (what the engine caches what it read from the file by)."""
		return f'{self.id}:{self.size_bytes}:{self.mtime_ns}'

	def stamp(self) -> FileStamp:
		return FileStamp(path=self.path, size_bytes=self.size_bytes, mtime_ns=self.mtime_ns, folder=False)


class UpscalerProbe(AssetProbe):
	"""An upscaler file, as spandrel reads it (engine/upscalers.py)."""

	architecture: str = ''  # spandrel's name: 'ESRGAN', 'RealESRGAN Compact', 'SwinIR'…
	scale: int = 0
	purpose: str = ''  # spandrel's: 'SR', 'Restoration'


class UpscalerRecord(AssetRecord):
	probe: UpscalerProbe


class AssetChanges(BaseModel):
	"""Nothing about an embedding or a VAE is edited through the API yet; the file is the record."""
