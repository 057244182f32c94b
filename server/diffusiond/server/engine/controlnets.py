"""ControlNets for a job: loaded from their diffusers folders once and kept (a few, least recently used first),
on the pipeline's device and dtype when used; a job's units become the ControlNet pipeline's model (several:
diffusers' MultiControlNetModel) and its keyword arguments."""

from collections import OrderedDict

import torch
from diffusers import ControlNetModel
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel
from PIL import Image
from pydantic import BaseModel, ConfigDict

from diffusiond.server.errors import AssetNotApplicableError
from diffusiond.server.schemas import ControlSpec
from diffusiond.server.tasks.sources import image_of

_KEPT = 2


class ControlInputs(BaseModel):
	"""What a ControlNet pipeline takes for one job."""

	model_config = ConfigDict(arbitrary_types_allowed=True)

	model: ControlNetModel | MultiControlNetModel
	images: Image.Image | list[Image.Image]
	scale: float | list[float]
	start: float | list[float]
	end: float | list[float]

	def kwargs(self, image_field: str) -> dict[str, object]:
		"""`image_field`: 'image' for text to image, 'control_image' for img2img and inpainting."""
		return {
			image_field: self.images,
			'controlnet_conditioning_scale': self.scale,
			'control_guidance_start': self.start,
			'control_guidance_end': self.end,
		}


class ControlNets:
	"""Worker thread only."""

	def __init__(self) -> None:
		self._loaded: OrderedDict[str, ControlNetModel] = OrderedDict()

	def _get(self, unit: ControlSpec, device: torch.device, dtype: torch.dtype) -> ControlNetModel:
		found = self._loaded.get(unit.key)
		if found is None:
			try:
				found = ControlNetModel.from_pretrained(str(unit.path), local_files_only=True, use_safetensors=True)
			except (OSError, ValueError, RuntimeError) as exc:
				raise AssetNotApplicableError(
					f'ControlNet {unit.name!r} cannot be loaded: {str(exc)[:300]}', metadata={'controlnet': unit.name}
				) from None
			self._loaded[unit.key] = found
			while len(self._loaded) > _KEPT:
				self._loaded.popitem(last=False)
		self._loaded.move_to_end(unit.key)
		return found.to(device=device, dtype=dtype)

	def inputs(self, units: list[ControlSpec], device: torch.device, dtype: torch.dtype) -> ControlInputs | None:
		if not units:
			return None
		models = [self._get(unit, device, dtype) for unit in units]
		images = [image_of(unit.image, 'RGB') for unit in units]
		if len(units) == 1:
			unit = units[0]
			return ControlInputs(model=models[0], images=images[0], scale=unit.scale, start=unit.start, end=unit.end)
		return ControlInputs(
			model=MultiControlNetModel(models),
			images=images,
			scale=[unit.scale for unit in units],
			start=[unit.start for unit in units],
			end=[unit.end for unit in units],
		)

	def forget(self) -> None:
		self._loaded.clear()
