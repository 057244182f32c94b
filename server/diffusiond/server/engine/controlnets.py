"""ControlNets for a job: loaded from their diffusers folders once and kept (a few, least recently used first),
on the pipeline's device and dtype when used; a job's units become the ControlNet pipeline's model (several:
diffusers' MultiControlNetModel) and its keyword arguments."""

from collections import OrderedDict
from pathlib import Path

from diffusers import ControlNetModel, DiffusionPipeline, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel
from PIL import Image
from pydantic import BaseModel, ConfigDict

from diffusiond.server.engine.tensor_files import Tensors, read_tensors
from diffusiond.server.errors import AssetNotApplicableError
from diffusiond.server.schemas import ControlSpec
from diffusiond.server.tasks.sources import image_of

_KEPT = 2
_LDM = 'control_model.'


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


def _hint_channels(tensors: Tensors) -> tuple[int, ...]:
	"""The conditioning embedding's channels from an original-layout file: its first conv, then each stride-2 conv
	(input_hint_block 4, 8, 12 ...; 14 is the output conv)."""
	found = [int(tensors[f'{_LDM}input_hint_block.0.weight'].shape[0])]
	index = 4
	while index < 14 and f'{_LDM}input_hint_block.{index}.weight' in tensors:
		found.append(int(tensors[f'{_LDM}input_hint_block.{index}.weight'].shape[0]))
		index += 4
	return tuple(found)


def from_original(path: Path, unet: UNet2DConditionModel) -> ControlNetModel:
	"""A ControlNet file in the original (A1111, `control_model.`) layout, shaped as the model's own UNet (a
	ControlNet copies its UNet's encoder), converted with diffusers' single-file converter, strictly."""
	tensors = read_tensors(path, allow_pickle=False)
	model = ControlNetModel.from_unet(
		unet, conditioning_embedding_out_channels=_hint_channels(tensors), load_weights_from_unet=False
	)
	state = convert_controlnet_checkpoint(tensors, dict(model.config))
	model.load_state_dict(state, strict=True)
	return model


class ControlNets:
	"""Worker thread only."""

	def __init__(self) -> None:
		self._loaded: OrderedDict[str, ControlNetModel] = OrderedDict()

	def _get(self, unit: ControlSpec, pipe: DiffusionPipeline) -> ControlNetModel:
		found = self._loaded.get(unit.key)
		if found is None:
			try:
				found = (
					from_original(unit.path, pipe.unet)
					if unit.path.is_file()
					else ControlNetModel.from_pretrained(str(unit.path), local_files_only=True, use_safetensors=True)
				)
			except (OSError, ValueError, RuntimeError, KeyError) as exc:
				raise AssetNotApplicableError(
					f'ControlNet {unit.name!r} cannot be loaded: {str(exc)[:300]}', metadata={'controlnet': unit.name}
				) from None
			self._loaded[unit.key] = found
			while len(self._loaded) > _KEPT:
				self._loaded.popitem(last=False)
		self._loaded.move_to_end(unit.key)
		return found.to(device=pipe.device, dtype=pipe.unet.dtype)

	def inputs(self, units: list[ControlSpec], pipe: DiffusionPipeline) -> ControlInputs | None:
		if not units:
			return None
		models = [self._get(unit, pipe) for unit in units]
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
