"""What a pipeline call reports through: the jobs side's step and stage hooks, and diffusers' step callback."""

from collections.abc import Callable

import torch
from diffusers import DiffusionPipeline
from PIL import Image
from pydantic import BaseModel

from diffusiond.server.jobs.engine_api import StageHook, StepHook

Callback = Callable[[DiffusionPipeline, int, torch.Tensor, dict[str, torch.Tensor]], dict[str, torch.Tensor]]
Refine = Callable[[torch.Tensor, Callback], list[Image.Image]]  # the first pass's latents, the refiner's callback


class Hooks(BaseModel):
	step: StepHook  # may raise to stop the call (a cancel)
	stage: StageHook
