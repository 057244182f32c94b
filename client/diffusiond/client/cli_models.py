"""`diffusionctl models ...`: list, show, load, unload, refresh, download, delete."""

import argparse
import sys

from google.protobuf import json_format

from diffusiond.client.cli_output import refreshed, say_empty
from diffusiond.client.model_requests import BASES, ORDERS, base_name, enum_name
from diffusiond.client.progress import ProgressBar
from diffusiond.client.request import parse_sampler, parse_schedule
from diffusiond.client.sync import Client
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import model_service_pb2 as model_pb


def add_model_commands(commands: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
	models = commands.add_parser(
		'models', help='the model catalog', epilog='example: diffusionctl models download URL --sha256 HEX'
	)
	actions = models.add_subparsers(dest='models_command', required=True)
	listing = actions.add_parser('list', help='models in the catalog')
	listing.add_argument('--base', choices=sorted(BASES), help='only models of this family')
	listing.add_argument('--loaded', action='store_true', help='only models in the memory cache')
	listing.add_argument('--order', choices=sorted(ORDERS), default='name', help='sort order (default name)')
	for name, text in (('show', 'one model in full'), ('load', 'load (warm up)'), ('unload', 'free its memory')):
		actions.add_parser(name, help=text).add_argument('model', help='id, name or sha256 prefix')
	refresh = actions.add_parser('refresh', help='rescan the models folder')
	refresh.add_argument('--restore', action='store_true', help='bring back unregistered models')
	download = actions.add_parser('download', help='download a checkpoint into the models folder')
	download.add_argument('url', help='http(s) URL of a .safetensors checkpoint')
	download.add_argument('--name', default='', help='file name inside the models folder')
	download.add_argument('--sha256', default='', help='expected sha256 (64 hex), verified before the file appears')
	download.add_argument('--overwrite', action='store_true', help='replace a file of that name')
	update = actions.add_parser('update', help='display name, tags, generation defaults')
	update.add_argument('model', help='id, name or sha256 prefix')
	update.add_argument('--display-name', help='a name to show instead of the file name')
	update.add_argument('--tags', help='comma-separated; replaces the tags ("" clears them)')
	update.add_argument('--sampler', help='default sampler, e.g. "DPM++ 2M Karras" ("" = the model\'s own)')
	update.add_argument('--schedule', help='default schedule, e.g. "SGM Uniform" ("" = automatic)')
	update.add_argument('--deep-cache', type=int, help='default DeepCache interval (0 = off)')
	update.add_argument('--tome', type=float, help='default token merging ratio (0 = off)')
	update.add_argument('--fast-decode', action=argparse.BooleanOptionalAction, help='default fast decode (TAESD)')
	update.add_argument('--steps', type=int, help='default steps (0 clears it)')
	update.add_argument('--cfg', type=float, help='default CFG scale (negative clears it)')
	update.add_argument('--clip-skip', type=int, help="default clip skip, A1111's numbering (0 clears it)")
	delete = actions.add_parser('delete', help='unregister a model (its files stay unless --files)')
	delete.add_argument('model', help='id, name or sha256 prefix')
	delete.add_argument('--files', action='store_true', help='also delete the file or folder')


def _line(model: model_pb.Model) -> str:
	flags = [flag for flag, on in (('active', model.active), ('loaded', model.loaded), ('demo', model.demo)) if on]
	status = enum_name('MODEL_STATUS_', model_pb.ModelStatus.Name(model.status))
	kind = enum_name('MODEL_FORMAT_', model_pb.ModelFormat.Name(model.format))
	note = f' ({status}: {model.problem})' if model.problem else ''
	hash_text = model.short_hash or '-'
	return f'{model.name:<40} {base_name(model.base):<7} {kind:<11} {model.size_bytes / 2**20:>9.1f} MiB  {hash_text:<10} {" ".join(flags)}{note}'


def _print(model: model_pb.Model, as_json: bool) -> None:
	print(json_format.MessageToJson(model, indent=None) if as_json else _line(model))


def _download(client: Client, args: argparse.Namespace) -> int:
	bar = ProgressBar()
	announced = False
	for event in client.download_model(args.url, args.name, args.sha256, args.overwrite):
		if event.HasField('progress'):
			progress = event.progress
			if progress.resumed_from and not announced:
				bar.message(f'resuming at {progress.resumed_from} bytes')
				announced = True
			if progress.phase == 'verifying':
				bar.message('verifying sha256')
			else:
				bar.transfer(progress.bytes, progress.total_bytes, progress.bytes_per_second, progress.eta_seconds)
		else:
			bar.finish()
			_print(event.completed, args.json)
	return 0


def _update(client: Client, args: argparse.Namespace) -> model_pb.Model:
	defaults = None
	given = [args.sampler, args.schedule, args.steps, args.cfg, args.clip_skip, args.deep_cache, args.tome]
	given.append(args.fast_decode)
	if any(value is not None for value in given):
		defaults = model_pb.ModelDefaults()
		defaults.CopyFrom(client.get_model(args.model).defaults)  # change only what was given
		if args.sampler is not None:
			defaults.sampler = parse_sampler(args.sampler) if args.sampler else gen_pb.SAMPLER_UNSPECIFIED
		if args.schedule is not None:
			defaults.schedule = parse_schedule(args.schedule)
		if args.deep_cache is not None:
			defaults.deep_cache_interval = args.deep_cache
		if args.tome is not None:
			defaults.token_merging_ratio = args.tome
		if args.fast_decode is not None:
			defaults.fast_decode = args.fast_decode
		if args.steps == 0:
			defaults.ClearField('steps')
		elif args.steps is not None:
			defaults.steps = args.steps
		if args.cfg is not None and args.cfg < 0:
			defaults.ClearField('guidance_scale')
		elif args.cfg is not None:
			defaults.guidance_scale = args.cfg
		if args.clip_skip == 0:
			defaults.ClearField('clip_skip')
		elif args.clip_skip is not None:
			defaults.clip_skip = args.clip_skip
	tags = None if args.tags is None else [tag.strip() for tag in args.tags.split(',') if tag.strip()]
	return client.update_model(args.model, display_name=args.display_name, tags=tags, defaults=defaults)


def models_command(client: Client, args: argparse.Namespace) -> int:
	action = args.models_command
	if action == 'list':
		found = client.list_models(args.base or '', args.loaded, args.order)
		for model in found:
			_print(model, args.json)
		say_empty(found, 'no models: put one into the models folder, or download one', args.json)
	elif action == 'show':
		print(json_format.MessageToJson(client.get_model(args.model)))
	elif action == 'load':
		loaded = client.load_model(args.model)
		print(
			f'{loaded.model.name} loaded in {loaded.load_seconds:.2f}s ({"from disk" if loaded.cold else "from cache"})'
		)
	elif action == 'unload':
		print('unloaded' if client.unload_model(args.model) else 'was not loaded', file=sys.stderr)
	elif action == 'refresh':
		result = client.refresh_models(args.restore)
		print(refreshed(result.added, result.restored, result.removed, result.changed, result.unchanged))
	elif action == 'download':
		return _download(client, args)
	elif action == 'update':
		_print(_update(client, args), args.json)
	elif action == 'delete':
		model = client.delete_model(args.model, args.files)
		print(f'{model.name} {"deleted" if args.files else "unregistered (files kept)"}')
	return 0
