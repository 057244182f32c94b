"""Few-step sampling benchmark: time to a finished image through the daemon for the few-step modes (LCM and TCD at
4 steps and CFG 1, Euler with SGM Uniform at 4 steps and CFG 1, as a Lightning/Turbo model runs) ÷ the 20-step
Euler a run at CFG 7.5 (tiny model, median of alternated runs). CFG 1 skips the unconditional half of every UNet
pass, so a 4-step CFG-1 image costs about a tenth of a 20-step CFG-7.5 one, whatever the model; the image quality
those modes give comes from models and LoRAs made for them, which the tiny random model is not. The same ratios on
an SD1.5-shaped model at 256² (random weights, one run each, a direct pipeline call with the scheduler the engine
makes for each mode): there the VAE decode, the same in every mode, is a larger share of a 4-step image."""

import statistics
import tempfile
import time
from pathlib import Path

import grpc
import torch
from diffusers import StableDiffusionPipeline

from bench.daemon import TimedBackend, start_daemon, stop_daemon
from bench.sd15 import build_sd15
from diffusiond.server.engine.demo import build_demo_model
from diffusiond.server.engine.schedulers import make_scheduler
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc

_SIZE = 64
_MODES = {
	'LCM, 4 steps, CFG 1': {'sampler': gen_pb.SAMPLER_LCM, 'steps': 4, 'guidance_scale': 1.0},
	'TCD, 4 steps, CFG 1': {'sampler': gen_pb.SAMPLER_TCD, 'steps': 4, 'guidance_scale': 1.0},
	'Euler + SGM Uniform, 4 steps, CFG 1': {
		'sampler': gen_pb.SAMPLER_EULER,
		'schedule': gen_pb.SCHEDULE_SGM_UNIFORM,
		'steps': 4,
		'guidance_scale': 1.0,
	},
}


_BASELINE = 'Euler a, 20 steps, CFG 7.5'
_DIRECT = {  # the same modes as the direct call gets them: sampler, schedule, steps, CFG
	_BASELINE: (Sampler.EULER_A, Schedule.UNSPECIFIED, 20, 7.5),
	'LCM, 4 steps, CFG 1': (Sampler.LCM, Schedule.UNSPECIFIED, 4, 1.0),
	'TCD, 4 steps, CFG 1': (Sampler.TCD, Schedule.UNSPECIFIED, 4, 1.0),
	'Euler + SGM Uniform, 4 steps, CFG 1': (Sampler.EULER, Schedule.SGM_UNIFORM, 4, 1.0),
}
_SD15_SIZE = 256


def _request(**fields: object) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(prompt='a red fox in the snow', seed=1, width=_SIZE, height=_SIZE)
	for name, value in fields.items():
		setattr(request, name, value)
	return request


def run_fewstep(repeats: int = 7) -> list[tuple[str, str]]:
	device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
	dtype = torch.float16 if device.type == 'cuda' else torch.float32
	with tempfile.TemporaryDirectory() as scratch:
		build_demo_model(Path(scratch) / 'models' / 'tiny-sd')
		daemon = start_daemon(Path(scratch), TimedBackend(device, dtype))
		try:
			with grpc.insecure_channel(f'127.0.0.1:{daemon.port}') as channel:
				stub = gen_grpc.GenerationServiceStub(channel)
				requests = {_BASELINE: _request(sampler=gen_pb.SAMPLER_EULER_A, steps=20)}
				requests |= {name: _request(**fields) for name, fields in _MODES.items()}
				times: dict[str, list[float]] = {name: [] for name in requests}
				for request in requests.values():  # warm-up
					for _ in stub.Generate(request):
						pass
				for _ in range(repeats):
					for name, request in requests.items():
						start = time.perf_counter()
						for _ in stub.Generate(request):
							pass
						times[name].append(time.perf_counter() - start)
		finally:
			stop_daemon(daemon)
		sd15 = _sd15_times(build_sd15(Path(scratch) / 'sd15', dtype), device)
	baseline = statistics.median(times[_BASELINE])
	rows = [(f'few-step: 20-step Euler a image, ms ({_SIZE}²)', f'{baseline * 1000:.0f}')]
	rows += [
		(f'few-step: {name} ÷ 20-step Euler a', f'{statistics.median(times[name]) / baseline:.2f}') for name in _MODES
	]
	rows.append((f'few-step (SD1.5-shaped {_SD15_SIZE}²): 20-step Euler a image, s', f'{sd15[_BASELINE]:.1f}'))
	rows += [
		(f'few-step (SD1.5-shaped {_SD15_SIZE}²): {name} ÷ 20-step Euler a', f'{sd15[name] / sd15[_BASELINE]:.2f}')
		for name in _MODES
	]
	return rows


def _sd15_times(folder: Path, device: torch.device) -> dict[str, float]:
	"""Seconds to a finished image per mode: one run each after a warm-up step."""
	pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, requires_safety_checker=False)
	pipe = pipe.to(device)
	pipe.set_progress_bar_config(disable=True)
	own = pipe.scheduler
	found: dict[str, float] = {}
	for name, (sampler, schedule, steps, guidance) in _DIRECT.items():
		pipe.scheduler = make_scheduler(sampler, own, schedule)
		if not found:
			pipe(prompt='warm-up', width=_SD15_SIZE, height=_SD15_SIZE, num_inference_steps=1)
		start = time.perf_counter()
		pipe(
			prompt='a red fox in the snow',
			width=_SD15_SIZE,
			height=_SD15_SIZE,
			num_inference_steps=steps,
			guidance_scale=guidance,
			generator=torch.Generator('cpu').manual_seed(1),
		)
		found[name] = time.perf_counter() - start
	return found


if __name__ == '__main__':
	for name, value in run_fewstep():
		print(f'{name:<60} {value:>14}')
