"""A direct diffusers call in its own process, with torch's defaults, as a user would run it.

`python -m bench.direct_call MODEL_DIR --steps 10 --size 64 --repeats 5` prints the median seconds of one
call (after one warm-up call) as its last line.
"""

import argparse
import statistics
import time

import torch
from diffusers import StableDiffusionPipeline


def main() -> None:
	parser = argparse.ArgumentParser()
	parser.add_argument('model')
	parser.add_argument('--steps', type=int, default=10)
	parser.add_argument('--size', type=int, default=64)
	parser.add_argument('--repeats', type=int, default=5)
	args = parser.parse_args()
	pipe = StableDiffusionPipeline.from_pretrained(args.model, safety_checker=None, requires_safety_checker=False)
	pipe.set_progress_bar_config(disable=True)

	def call() -> float:
		start = time.perf_counter()
		generator = [torch.Generator('cpu').manual_seed(1)]
		pipe('a red fox', width=args.size, height=args.size, num_inference_steps=args.steps, generator=generator)
		return time.perf_counter() - start

	call()
	print(statistics.median(call() for _ in range(args.repeats)))


if __name__ == '__main__':
	main()
