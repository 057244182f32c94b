"""Stable-Diffusion-1.5-shaped throughput (CUDA): it/s through the daemon and through raw diffusers.

The model has SD1.5's UNet, VAE and CLIP ViT-L text encoder shapes with random weights (timings do not
depend on the weights), saved once as an fp16 diffusers folder. Each figure is denoising steps per second
at 512x512, 25 steps, median of a few runs: the daemon's from its own `inference_s` timing, raw
diffusers' from the wall time of `pipe(...)`; eager, then with `torch.compile` of the UNet (the daemon's
`device.compile` setting, warm-up included in the load). Also: GPU memory held with the model loaded, and
after UnloadModel.
"""

import statistics
import tempfile
import time
from pathlib import Path

import grpc
import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from bench.daemon import start_daemon
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.demo import offline_tokenizer
from diffusiond.server.engine.diffusers_engine import DiffusersEngine, quiet_libraries
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc

PROMPT = 'a red fox in the snow, highly detailed'
NAME = 'sd15-shaped'


def build_sd15(target: Path, dtype: torch.dtype) -> Path:
	"""SD1.5's architecture with random weights, saved as a diffusers folder."""
	torch.manual_seed(0)
	unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD1.5 defaults
	vae = AutoencoderKL(
		block_out_channels=(128, 256, 512, 512),
		down_block_types=('DownEncoderBlock2D',) * 4,
		up_block_types=('UpDecoderBlock2D',) * 4,
		layers_per_block=2,
		latent_channels=4,
		sample_size=512,
	)
	with tempfile.TemporaryDirectory() as scratch:
		tokenizer = offline_tokenizer(Path(scratch))
	text_encoder = CLIPTextModel(
		CLIPTextConfig(
			hidden_size=768,
			intermediate_size=3072,
			num_attention_heads=12,
			num_hidden_layers=12,
			max_position_embeddings=77,
			vocab_size=len(tokenizer),
			bos_token_id=0,
			eos_token_id=1,
			pad_token_id=1,
		)
	)
	pipe = StableDiffusionPipeline(
		unet=unet,
		vae=vae,
		text_encoder=text_encoder,
		tokenizer=tokenizer,
		scheduler=DPMSolverMultistepScheduler(
			beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012, steps_offset=1
		),
		safety_checker=None,
		feature_extractor=None,
		requires_safety_checker=False,
	)
	pipe.to(dtype).save_pretrained(str(target), safe_serialization=True)
	return target


def _daemon_its(port: int, request: gen_pb.GenerateRequest, repeats: int) -> float:
	stub = gen_grpc.GenerationServiceStub(grpc.insecure_channel(f'127.0.0.1:{port}'))
	rates = []
	for _ in range(repeats + 1):  # the first run warms up
		events = list(stub.Generate(request))
		rates.append(request.steps / events[-1].completed.timings.inference_seconds)
	return statistics.median(rates[1:])


def _direct_its(pipe: StableDiffusionPipeline, size: int, steps: int, repeats: int) -> float:
	rates = []
	for _ in range(repeats + 1):
		sync()
		start = time.perf_counter()
		pipe(prompt=PROMPT, width=size, height=size, num_inference_steps=steps)
		sync()
		rates.append(steps / (time.perf_counter() - start))
	return statistics.median(rates[1:])


def sync() -> None:
	if torch.cuda.is_available():
		torch.cuda.synchronize()


def _allocated_mib(device: torch.device) -> float:
	return torch.cuda.memory_allocated() / 2**20 if device.type == 'cuda' else 0.0


def run_sd15(device: torch.device, size: int = 512, steps: int = 25, repeats: int = 3) -> list[tuple[str, str]]:
	quiet_libraries()
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	rows: list[tuple[str, str]] = []
	request = gen_pb.GenerateRequest(model=NAME, prompt=PROMPT, steps=steps, width=size, height=size, seed=1)
	with tempfile.TemporaryDirectory() as scratch:
		folder = build_sd15(Path(scratch) / 'models' / NAME, dtype)
		for compiled in (False, True) if device.type == 'cuda' else (False,):
			label = 'compiled' if compiled else 'eager'
			backend = DiffusersEngine(device, dtype, PipelineCache(1, 2**40))
			before = _allocated_mib(device)
			daemon = start_daemon(Path(scratch), backend, {'compile': compiled})
			served = _daemon_its(daemon.port, request, repeats)
			loaded = _allocated_mib(device)
			models = model_grpc.ModelServiceStub(grpc.insecure_channel(f'127.0.0.1:{daemon.port}'))
			models.UnloadModel(model_pb.UnloadModelRequest(model=NAME))
			freed = _allocated_mib(device)
			pipe = StableDiffusionPipeline.from_pretrained(str(folder), dtype=dtype).to(device)
			pipe.set_progress_bar_config(disable=True)
			if compiled:
				pipe.unet = torch.compile(pipe.unet)
			direct = _direct_its(pipe, size, steps, repeats)
			del pipe
			rows += [
				(f'SD1.5-shaped {size}², {label}: it/s daemon / raw diffusers', f'{served:.2f} / {direct:.2f}'),
				(f'SD1.5-shaped {size}², {label}: ratio daemon / raw', f'{served / direct:.3f}'),
			]
			if not compiled and device.type == 'cuda':
				rows.append(
					(
						'SD1.5-shaped GPU memory: before / loaded / after UnloadModel',
						f'{before:.0f} / {loaded:.0f} / {freed:.0f} MiB',
					)
				)
	return rows
