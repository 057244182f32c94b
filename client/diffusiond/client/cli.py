"""`diffusionctl`: the command-line client."""

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from google.protobuf import json_format

from diffusiond.client.cli_args import build_parser, tls_from
from diffusiond.client.cli_history import history_command
from diffusiond.client.cli_loras import loras_command
from diffusiond.client.cli_models import models_command
from diffusiond.client.cli_styles import styles_command
from diffusiond.client.errors import DeadlineExceeded, DiffusiondError, Unavailable
from diffusiond.client.images import GeneratedImage
from diffusiond.client.progress import ProgressBar
from diffusiond.client.request import GenerateOptions
from diffusiond.client.sync import Client
from diffusiond.v1 import generation_service_pb2 as gen_pb

# Exit codes: 0 ok, 1 server error, 2 usage or invalid argument, 3 not found, 4 daemon unreachable/unavailable.
_EXIT_CODES = {
	grpc.StatusCode.INVALID_ARGUMENT: 2,
	grpc.StatusCode.NOT_FOUND: 3,
	grpc.StatusCode.UNAVAILABLE: 4,
	grpc.StatusCode.DEADLINE_EXCEEDED: 4,  # unreachable (reads retry until the deadline) or too slow
	grpc.StatusCode.UNAUTHENTICATED: 5,
}


def _outputs(base: Path, count: int, suffix: str) -> list[Path]:
	base = base if base.suffix else base.with_suffix(suffix)
	if count == 1:
		return [base]
	return [base.with_name(f'{base.stem}-{i}{base.suffix}') for i in range(count)]


def _options(args: argparse.Namespace) -> GenerateOptions:
	options = GenerateOptions()
	for key in (
		'model',
		'negative_prompt',
		'steps',
		'seed',
		'num_images',
		'quality',
		'guidance_scale',
		'sampler',
		'strength',
		'mask_blur',
		'mask_crop_padding',
	):
		value = getattr(args, key)
		if value is not None:
			options[key] = value
	if args.size:
		options['width'], options['height'] = args.size
	if args.lora:
		options['loras'] = args.lora
	if args.triggers:
		options['add_trigger_words'] = True
	if args.keep_running:
		options['keep_running'] = True
	if args.init_image:
		options['init_image'] = args.init_image.read_bytes()
	if args.mask:
		options['mask_image'] = args.mask.read_bytes()
	if args.style:
		options['styles'] = args.style
	if args.priority:
		options['priority'] = True
	suffix = args.output.suffix.lstrip('.').lower() if args.output else ''
	if args.format or suffix in ('png', 'jpg', 'jpeg', 'webp'):
		options['output_format'] = args.format or suffix
	return options


def _generate(client: Client, args: argparse.Namespace) -> int:
	return _follow(client.generate(args.prompt, **_options(args)), args)


def _follow(events: Iterator[gen_pb.GenerateEvent], args: argparse.Namespace) -> int:
	"""Shows a job's events with a progress bar and saves its images (generate, jobs watch)."""
	bar = ProgressBar()
	images: list[GeneratedImage] = []
	for event in events:
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
			total = event.completed.timings.total_seconds
			for image, path in zip(images, _outputs(args.output, len(images), images[0].suffix), strict=True):
				image.save(path)
				print(
					json.dumps({'path': str(path), 'seed': image.seed}) if args.json else f'{path} (seed {image.seed})'
				)
			print(f'done in {total:.2f}s', file=sys.stderr)
			if event.completed.storage == gen_pb.STORAGE_STATE_NOT_STORED:
				print(
					f'warning: the daemon did not keep these images ({event.completed.storage_error}); '
					'the files written here are the only copies',
					file=sys.stderr,
				)
	return 0


def _info(client: Client, args: argparse.Namespace) -> int:
	info = client.system_info()
	if args.json:
		print(json_format.MessageToJson(info))
		return 0
	device = info.device
	print(f'diffusiond {info.version} on {device.name} ({device.dtype}), up {info.uptime.seconds}s')
	print(f'default model: {info.default_model or "(none)"}; queue {info.queue_depth}/{info.queue_capacity}')
	for model in info.loaded_models:
		note = '  [demo: random weights, produces noise]' if model.demo else ''
		where = 'on the device' if model.active else 'in RAM'
		print(f'loaded: {model.name} ({model.native_size}px, {model.bytes / 2**20:.0f} MiB {where}){note}')
	print(
		f'model cache {info.model_cache_bytes / 2**20:.0f}/{info.model_cache_max_bytes / 2**20:.0f} MiB, '
		f'at most {info.model_cache_max_models} models'
	)
	print(f'process RSS {info.process_rss_bytes / 2**20:.0f} MiB')
	return 0


def _jobs(client: Client, args: argparse.Namespace) -> int:
	if args.jobs_command == 'watch':
		return _follow(client.watch_job(args.job_id), args)
	if args.jobs_command == 'clear':
		cancelled = client.cancel_queued_jobs()
		print(json.dumps(cancelled) if args.json else f'cancelled {len(cancelled)} queued job(s)')
		return 0
	if args.jobs_command == 'cancel':
		previous = client.cancel_job(args.job_id)
		print(f'cancelled {args.job_id} (was {gen_pb.JobState.Name(previous).removeprefix("JOB_STATE_").lower()})')
		return 0
	for job in client.list_jobs():
		state = gen_pb.JobState.Name(job.state).removeprefix('JOB_STATE_').lower()
		print(
			json_format.MessageToJson(job, indent=None)
			if args.json
			else f'{job.job_id} {state} {job.step}/{job.total_steps or job.steps} {job.prompt[:40]!r}'
		)
	return 0


_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
	'generate': _generate,
	'info': _info,
	'jobs': _jobs,
	'models': models_command,
	'loras': loras_command,
	'styles': styles_command,
	'history': history_command,
}


def main(argv: list[str] | None = None) -> int:
	args = build_parser().parse_args(argv)
	try:
		with Client(args.address, timeout=args.timeout, token=args.token, tls=tls_from(args)) as client:
			return _COMMANDS[args.command](client, args)
	except DiffusiondError as error:
		reason = f' ({error.reason})' if error.reason else ''
		print(f'error: {error.code.name}{reason}: {error.message}', file=sys.stderr)
		if isinstance(error, Unavailable | DeadlineExceeded) and not error.reason:  # not an answer of the daemon
			print(
				f'is diffusiond running at {args.address or "$DIFFUSIOND_ADDRESS / localhost:50051"}?', file=sys.stderr
			)
		return _EXIT_CODES.get(error.code, 1)
	except ValueError as error:
		print(f'error: {error}', file=sys.stderr)
		return 2


if __name__ == '__main__':
	sys.exit(main())
