"""The direct diffusers calls the daemon's images are compared with (the tiny model, one image, a CPU generator), and
the model defaults a test sets and puts back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import SchedulerMixin, StableDiffusionPipeline
from PIL import Image

from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import TINY_MODEL
from tests.helpers import Pixels


def direct_pipe(
	folder: Path, scheduler: type[SchedulerMixin] | None = None, **config: object
) -> StableDiffusionPipeline:
	"""The tiny model as a plain pipeline, with `scheduler` made from its own config (and `config`) if given."""
	pipe = StableDiffusionPipeline.from_pretrained(
		str(folder), safety_checker=None, requires_safety_checker=False, local_files_only=True
	)
	pipe.set_progress_bar_config(disable=True)
	if scheduler is not None:
		pipe.scheduler = scheduler.from_config(pipe.scheduler.config, **config)
	return pipe


def direct_image(pipe: StableDiffusionPipeline, prompt: str, steps: int, seed: int, guidance: float = 7.5) -> Pixels:
	image: Image.Image = pipe(
		prompt=prompt,
		num_inference_steps=steps,
		guidance_scale=guidance,
		width=64,
		height=64,
		generator=torch.Generator('cpu').manual_seed(seed),
	).images[0]
	return np.asarray(image)


async def set_defaults(models: model_grpc.ModelServiceAsyncStub, defaults: model_pb.ModelDefaults) -> None:
	"""The tiny model's defaults, as a whole (an empty message puts them back)."""
	update = model_pb.UpdateModelRequest(model=model_pb.Model(name=TINY_MODEL, defaults=defaults))
	update.update_mask.paths.append('defaults')
	await models.UpdateModel(update)
