"""What a pipeline call reports through: the jobs side's step and stage hooks, and diffusers' step callback."""

from collections.abc import Callable

import torch
from diffusers import DiffusionPipeline
from PIL import Image
from pydantic import BaseModel

from diffusiond.server.jobs.engine_api import StageHook, StepHook
from diffusiond.server.tasks.upscaler_file import UpscalerFile

Callback = Callable[[DiffusionPipeline, int, torch.Tensor, dict[str, torch.Tensor]], dict[str, torch.Tensor]]
Refine = Callable[[torch.Tensor, Callback], list[Image.Image]]  # the first pass's latents, the refiner's callback
ModelUpscale = Callable[[Image.Image, UpscalerFile, tuple[int, int]], Image.Image]  # an upscaler model to a size


class Hooks(BaseModel):
	step: StepHook  # may raise to stop the call (a cancel)
	stage: StageHook
	upscale: ModelUpscale  # a hires fix's upscaler from the folder
