"""SDXL's refiner pass (diffusers' ensemble of experts): the job's model denoises to `switch_at` of the steps and
hands its latents over; the refiner, loaded like any model (cached, on the device while active), finishes from
`denoising_start` with its own text encoder's embeddings of the same prompts, no LoRAs and its own VAE."""

from collections.abc import Callable

import torch
from PIL import Image

from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.engine.cache import Entry, cache_key
from diffusiond.server.engine.hooks import Callback
from diffusiond.server.engine.lora_apply import LoraFiles, apply_loras
from diffusiond.server.engine.prompt_embeds import prompt_kwargs
from diffusiond.server.engine.schedulers import make_scheduler
from diffusiond.server.engine.tensor_files import Tensors
from diffusiond.server.engine.vaes import VaeSwitch, watched_decode
from diffusiond.server.schemas import JobSpec


class RefinerRun:
	"""What the refiner pass needs from the engine: loading the refiner, the LoRA files and the VAE switch."""

	def __init__(
		self, load: Callable[[ModelInfo], Entry], lora_files: LoraFiles, vaes: VaeSwitch, max_adapters: int
	) -> None:
		self._load = load
		self._lora_files = lora_files
		self._vaes = vaes
		self._max_adapters = max_adapters

	def __call__(
		self,
		spec: JobSpec,
		vectors: dict[str, Tensors],
		notices: list[str],
		on_decode: Callable[[], None],
		latents: torch.Tensor,
		callback: Callback,
	) -> list[Image.Image]:
		refiner = spec.refiner
		if refiner is None:
			raise ValueError('a refiner pass needs a job with a refiner')
		entry = self._load(refiner.model)
		pipe = entry.pipe
		pipe.scheduler = make_scheduler(spec.sampler, entry.scheduler, spec.schedule)
		apply_loras(pipe, entry.adapters, [], self._lora_files, self._max_adapters)  # the job's LoRAs are the model's
		if entry.vae is not None:
			self._vaes.use(pipe, entry.vae, cache_key(entry.info), None)
		with watched_decode(pipe.vae, notices, on_decode):
			result = pipe(
				image=latents.to(pipe.device),
				denoising_start=refiner.switch_at,
				num_inference_steps=spec.steps,
				guidance_scale=spec.guidance_scale,
				generator=[torch.Generator(device='cpu').manual_seed(seed) for seed in spec.seeds],
				callback_on_step_end=callback,
				**prompt_kwargs(pipe, [spec], [vectors]),
			)
		images: list[Image.Image] = list(result.images)
		return images
