"""diffusiond benchmarks, printed as one table from one run: `make bench` (python -m bench.run).

Memory figures come first, before the generation benchmark starts a daemon that keeps its model.
"""

import argparse

import torch

from bench.assets import run_assets
from bench.batching import run_batching
from bench.busy import run_busy
from bench.catalog import run_catalog
from bench.cluster import run_cluster
from bench.encoding import run_encoding
from bench.fewstep import run_fewstep
from bench.gateway import run_gateway
from bench.generation import run_generation
from bench.history import run_history
from bench.loras import run_loras
from bench.memory_plan import run_memory_plan
from bench.multistage import run_multistage
from bench.outputs import run_outputs
from bench.prompts import run_prompts
from bench.queue import run_queue
from bench.recommend import run_recommend
from bench.sd15 import run_sd15
from bench.soak import run_soak
from bench.speedups import run_speedups
from bench.switching import run_switching
from bench.upscale import run_upscale


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
	parser.add_argument('--repeats', type=int, default=7)
	parser.add_argument('--steps', type=int, default=20)
	parser.add_argument('--size', type=int, default=64)
	parser.add_argument('--scan-files', type=int, default=1000)
	parser.add_argument('--soak-streams', type=int, default=1000, help='0 skips the soak')
	parser.add_argument(
		'--sd15', choices=['auto', 'skip', 'cpu'], default='auto', help='SD1.5-shaped 512² it/s: auto = on CUDA only'
	)
	args = parser.parse_args()
	device = 'cuda' if torch.cuda.is_available() else 'cpu'
	print(f'device: {device}, torch threads {torch.get_num_threads()}, tiny model {args.size}x{args.size}')
	rows = [
		*run_catalog(args.scan_files),
		*run_history(),
		*run_switching(),
		*run_generation(args.repeats, args.steps, args.size),
		*run_gateway(args.repeats, args.steps, args.size),
		*run_fewstep(args.repeats),
		*run_speedups(),
		*run_memory_plan(),
		*run_queue(),
		*run_cluster(),
		*run_outputs(),
		*run_busy(),
		*run_loras(steps=args.steps, size=args.size),
		*run_recommend(),
		*run_prompts(),
		*run_assets(),
		*run_multistage(),
		*run_upscale(),
		*run_batching(args.steps, args.size),
		*run_encoding(),
		*(run_soak(args.soak_streams) if args.soak_streams else []),
		*_sd15(args.sd15, device),
	]
	print(f'{"benchmark":<60} {"value":>14}')
	for name, value in rows:
		print(f'{name:<60} {value:>14}')


def _sd15(mode: str, device: str) -> list[tuple[str, str]]:
	if mode == 'cpu':  # a smoke run of the same code: 64², 4 steps (an SD1.5 UNet at 512² takes ~10 s a step)
		return run_sd15(torch.device('cpu'), size=64, steps=4)
	if mode == 'skip' or device != 'cuda':
		return [('SD1.5-shaped 512² it/s daemon / raw diffusers (CUDA only)', 'skipped')]
	return run_sd15(torch.device('cuda'))


if __name__ == '__main__':
	main()
