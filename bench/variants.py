"""Daemon / direct diffusers ratios for img2img and for txt2img with a LoRA (same process, alternated)."""

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoPipelineForImage2Image, StableDiffusionPipeline
from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

PROMPT = 'a red fox in the snow'


def img2img_ratio(
	stub: gen_grpc.GenerationServiceStub,
	direct_pipe: StableDiffusionPipeline,
	request: gen_pb.GenerateRequest,
	repeats: int,
) -> float:
	"""img2img (strength 0.75) through the daemon / AutoPipelineForImage2Image.from_pipe on the direct pipe."""
	steps, size = request.steps, request.width
	init = Image.fromarray(np.random.default_rng(3).integers(0, 255, (size, size, 3), dtype=np.uint8), 'RGB')
	buffer = io.BytesIO()
	init.save(buffer, format='PNG')
	i2i_request = gen_pb.GenerateRequest(
		prompt=PROMPT, steps=steps, seed=1, width=size, height=size, init_image=buffer.getvalue(), strength=0.75
	)
	direct_i2i = AutoPipelineForImage2Image.from_pipe(direct_pipe)
	direct_i2i.set_progress_bar_config(disable=True)

	def direct() -> None:
		direct_i2i(
			prompt=PROMPT,
			image=init,
			strength=0.75,
			num_inference_steps=steps,
			generator=[torch.Generator('cpu').manual_seed(1)],
		)

	return served_over_direct(stub, i2i_request, direct, repeats)


def with_lora_ratio(
	stub: gen_grpc.GenerationServiceStub,
	request: gen_pb.GenerateRequest,
	direct_pipe: StableDiffusionPipeline,
	lora_file: Path,
	repeats: int,
) -> float:
	"""Generate with a LoRA through the daemon / the direct call with the same LoRA loaded (peft adapter)."""
	with_lora = gen_pb.GenerateRequest()
	with_lora.CopyFrom(request)
	with_lora.loras.append(gen_pb.LoraRef(lora=lora_file.stem, weight=0.8))
	direct_pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name='bench')
	direct_pipe.set_adapters(['bench'], adapter_weights=[0.8])
	steps, size = request.steps, request.width
	for _ in stub.Generate(with_lora):  # warm-up: the daemon attaches the LoRA once
		pass
	return served_over_direct(
		stub,
		with_lora,
		lambda: direct_pipe(prompt=PROMPT, width=size, height=size, num_inference_steps=steps),
		repeats,
	)


def served_over_direct(
	stub: gen_grpc.GenerationServiceStub, request: gen_pb.GenerateRequest, direct: Callable[[], object], repeats: int
) -> float:
	"""Median time of `request` through the daemon / of `direct()`, the two alternated so drift hits both."""
	direct_times, served_times = [], []
	for _ in range(repeats):
		start = time.perf_counter()
		direct()
		direct_times.append(time.perf_counter() - start)
		start = time.perf_counter()
		for _ in stub.Generate(request):
			pass
		served_times.append(time.perf_counter() - start)
	return statistics.median(served_times) / statistics.median(direct_times)
