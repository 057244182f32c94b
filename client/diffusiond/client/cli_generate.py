"""`diffusionctl generate`, `jobs …` and `info`: jobs followed with a progress bar, images saved safely."""

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import json_format

from diffusiond.client.cli_files import (
	LocalFileError,
	controlnet_unit,
	image_format,
	numbered,
	prepare_outputs,
	read_input,
	write_output,
)
from diffusiond.client.cli_next import take_next
from diffusiond.client.cli_output import say_empty
from diffusiond.client.images import GeneratedImage
from diffusiond.client.progress import ProgressBar
from diffusiond.client.request import GenerateOptions
from diffusiond.client.sync import Client
from diffusiond.v1 import generation_service_pb2 as gen_pb


def _options(args: argparse.Namespace, output_format: str | None) -> GenerateOptions:
	options = GenerateOptions()
	for key in (
		'model',
		'negative_prompt',
		'steps',
		'seed',
		'num_images',
		'quality',
		'guidance_scale',
		'clip_skip',
		'vae',
		'sampler',
		'schedule',
		'deep_cache_interval',
		'token_merging_ratio',
		'fast_decode',
		'strength',
		'mask_blur',
		'mask_crop_padding',
		'hires_scale',
		'hires_upscaler',
		'hires_steps',
		'hires_strength',
	):
		value = getattr(args, key)
		if value is not None:
			options[key] = value
	if args.size:
		options['width'], options['height'] = args.size
	if args.hires_size:
		options['hires_width'], options['hires_height'] = args.hires_size
	if args.triggers:
		options['add_trigger_words'] = True
	if args.keep_running:
		options['keep_running'] = True
	if args.priority:
		options['priority'] = True
	if args.lora:
		options['loras'] = args.lora
	if args.refiner:
		options['refiner'] = args.refiner
	if args.controlnet:
		options['controlnets'] = [controlnet_unit(text) for text in args.controlnet]
	if args.init_image:
		options['init_image'] = read_input(args.init_image, '--init-image')
	if args.mask:
		options['mask_image'] = read_input(args.mask, '--mask')
	if args.style:
		options['styles'] = args.style
	if output_format:
		options['output_format'] = output_format
	return options


class Follow:
	"""One job on the screen: the progress bar, then its images saved where -o says."""

	def __init__(self, args: argparse.Namespace, outputs: list[Path] | None = None) -> None:
		self.args = args
		self.outputs = outputs  # prepared before the job was sent (generate); None: prepared on arrival (watch)
		self.job_id = ''

	def run(self, events: Iterator[gen_pb.GenerateEvent]) -> int:
		bar = ProgressBar()
		images: list[GeneratedImage] = []
		for event in events:
			self.job_id = event.job_id or self.job_id
			kind = event.WhichOneof('event')
			if kind == 'queued' and event.queued.position > 1:
				bar.message(f'queued: position {event.queued.position} of {event.queued.queue_length}')
			elif kind == 'started':
				seeds = ', '.join(str(seed) for seed in event.started.seeds)
				loras = ''.join(f', {lora.name}:{lora.weight:g}' for lora in event.started.loras)
				bar.message(f'job {event.job_id} on {event.started.model}{loras}, seeds {seeds}')
			elif kind == 'progress':
				bar.update(event.progress.step, event.progress.total_steps, event.progress.eta_seconds)
			elif kind == 'image':
				images.append(GeneratedImage.from_event(event))
			elif kind == 'completed':
				bar.finish()
				self._save(images, event.completed)
		return 0

	def _save(self, images: list[GeneratedImage], completed: gen_pb.CompletedEvent) -> None:
		paths = self.outputs
		if paths is None or len(paths) != len(images):
			paths = numbered(self.args.output, len(images), images[0].suffix if images else '.png')
			prepare_outputs(paths, self.args.overwrite)
		for image, path in zip(images, paths, strict=True):
			write_output(path, image.data)
			line = {'path': str(path), 'seed': image.seed, 'job_id': image.job_id}
			print(json.dumps(line) if self.args.json else f'{path} (seed {image.seed})')
		print(f'done in {completed.timings.total_seconds:.2f}s', file=sys.stderr)
		if completed.storage == gen_pb.STORAGE_STATE_NOT_STORED:
			print(
				f'warning: the daemon did not keep these images ({completed.storage_error}); '
				'the files written here are the only copies',
				file=sys.stderr,
			)


def generate(client: Client, args: argparse.Namespace) -> int:
	kept = take_next()  # `loras suggest --apply`
	if kept:
		args.prompt = ' '.join([args.prompt, *kept]).strip()
		print(f'adding {" ".join(kept)} (from `loras suggest --apply`)', file=sys.stderr)
	output_format = image_format(args.output, args.format)
	options = _options(args, output_format)
	suffix = {'jpeg': '.jpg', 'webp': '.webp'}.get(output_format or '', '.png')
	paths = numbered(args.output, args.num_images or 1, suffix)
	prepare_outputs(paths, args.overwrite)  # before the job runs: a refusal costs no work
	follow = Follow(args, paths)
	args.follow = follow  # the job id for an interrupt's message
	return follow.run(client.generate(args.prompt, **options))


def png_info(client: Client, args: argparse.Namespace) -> int:
	"""Prints the request (JSON, as grpcurl and Generate take it), the program that made the image, unknown keys."""
	text = sys.stdin.read() if str(args.file) == '-' else ''
	parsed = client.parse_parameters(image=b'' if text else args.file.read_bytes(), text=text)
	if args.json:
		print(json_format.MessageToJson(parsed))
		return 0
	print(f'made by {parsed.generator}')
	print(json_format.MessageToJson(parsed.request))
	for entry in parsed.unknown:
		print(f'not used here: {entry}')
	return 0


def info(client: Client, args: argparse.Namespace) -> int:
	system = client.system_info()
	if args.json:
		print(json_format.MessageToJson(system))
		return 0
	device = system.device
	print(f'diffusiond {system.version} on {device.name} ({device.dtype}), up {system.uptime.seconds}s')
	print(f'default model: {system.default_model or "(none)"}; queue {system.queue_depth}/{system.queue_capacity}')
	for model in system.loaded_models:
		note = '  [demo: random weights, produces noise]' if model.demo else ''
		where = 'on the device' if model.active else 'in RAM'
		print(f'loaded: {model.name} ({model.native_size}px, {model.bytes / 2**20:.0f} MiB {where}){note}')
	print(
		f'model cache {system.model_cache_bytes / 2**20:.0f}/{system.model_cache_max_bytes / 2**20:.0f} MiB, '
		f'at most {system.model_cache_max_models} models'
	)
	print(f'process RSS {system.process_rss_bytes / 2**20:.0f} MiB')
	return 0


def jobs(client: Client, args: argparse.Namespace) -> int:
	if args.jobs_command == 'watch':
		follow = Follow(args)
		args.follow = follow
		return follow.run(client.watch_job(args.job_id))
	if args.jobs_command == 'clear':
		cancelled = client.cancel_queued_jobs()
		print(json.dumps(cancelled) if args.json else f'cancelled {len(cancelled)} queued job(s)')
		return 0
	if args.jobs_command == 'cancel':
		previous = client.cancel_job(args.job_id, args.finish_early)
		print(f'cancelled {args.job_id} (was {gen_pb.JobState.Name(previous).removeprefix("JOB_STATE_").lower()})')
		return 0
	listed = client.list_jobs()
	for job in listed:
		state = gen_pb.JobState.Name(job.state).removeprefix('JOB_STATE_').lower()
		print(
			json_format.MessageToJson(job, indent=None)
			if args.json
			else f'{job.job_id} {state} {job.step}/{job.total_steps or job.steps} {job.prompt[:40]!r}'
		)
	say_empty(listed, 'no queued or running jobs', args.json)
	return 0


__all__ = ['Follow', 'LocalFileError', 'generate', 'info', 'jobs']
