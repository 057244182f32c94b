"""`diffusionctl history ...`: list, show, rm, update, image, usage, regenerate, export, import."""

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import json_format

from diffusiond.client.cli_files import LocalFileError, check_input, numbered, prepare_outputs, write_output
from diffusiond.client.cli_output import say_empty
from diffusiond.client.images import GeneratedImage
from diffusiond.client.sync import Client


def add_history_commands(commands: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
	history = commands.add_parser(
		'history', help='past generations', epilog='example: diffusionctl history list -q fox'
	)
	actions = history.add_subparsers(dest='history_command', required=True)
	listing = actions.add_parser('list', help='newest first')
	listing.add_argument('-q', '--query', default='', help='text in the prompt')
	listing.add_argument('--model', default='', help='only this model (id or name)')
	listing.add_argument('--lora', default='', help='only jobs with this LoRA (id or name)')
	listing.add_argument('--style', default='', help='only jobs with this style')
	listing.add_argument('--favourites', action='store_true', help='only favourites')
	size = listing.add_mutually_exclusive_group()
	size.add_argument('-n', '--limit', type=int, default=20, help='at most this many, newest first (default 20)')
	size.add_argument('--all', action='store_true', help='every matching record')
	for name, text in (('show', 'one generation in full'), ('rm', 'delete a generation and its images')):
		actions.add_parser(name, help=text).add_argument('id', help=ID_HELP)
	update = actions.add_parser('update', help='favourite, tags or note (only the options given)')
	update.add_argument('id', help=ID_HELP)
	update.add_argument('--favourite', action=argparse.BooleanOptionalAction, default=None, help='mark or unmark')
	update.add_argument('--tags', help='comma-separated; "" clears them')
	update.add_argument('--note', help='free text')
	image = actions.add_parser('image', help='save one image of a generation (or a JPEG thumbnail)')
	image.add_argument('id', help=ID_HELP)
	image.add_argument('--index', type=int, default=0, help='which image of the job (default 0)')
	image.add_argument('--thumbnail', type=int, default=0, help='longest side in pixels (16..1024)')
	image.add_argument('-o', '--output', type=Path, required=True, help='file to write')
	image.add_argument('--overwrite', action='store_true', help=OVERWRITE_HELP)
	actions.add_parser('usage', help='jobs and images per model, LoRA and style; images per day')
	regenerate = actions.add_parser('regenerate', help='run a generation again (same pixels on the same model)')
	regenerate.add_argument('id', help=ID_HELP)
	regenerate.add_argument('-o', '--output', type=Path, default=Path('regenerated.png'), help='file to write')
	regenerate.add_argument('--overwrite', action='store_true', help=OVERWRITE_HELP)
	export = actions.add_parser('export', help='write an archive: styles, catalog metadata, history')
	export.add_argument('file', type=Path, help='the .zip to write')
	export.add_argument('--images', action='store_true', help='include the image files')
	export.add_argument('--overwrite', action='store_true', help=OVERWRITE_HELP)
	importer = actions.add_parser('import', help='read an archive (all or nothing)')
	importer.add_argument('file', type=Path, help='a .zip written by history export')


ID_HELP = 'a generation id, or a unique prefix of 8+ characters'
OVERWRITE_HELP = 'replace the file if it exists (default: refuse)'


def _read_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
	with path.open('rb') as file:
		while data := file.read(size):
			yield data


def _list(client: Client, args: argparse.Namespace) -> None:
	limit = 10**9 if args.all else args.limit
	found = client.list_generations(args.query, args.model, args.lora, args.style, args.favourites, limit + 1)
	for generation in found[:limit]:
		when = generation.create_time.ToDatetime().strftime('%Y-%m-%d %H:%M:%S')
		line = f'{generation.id}  {when}  {generation.model_name:<20} {len(generation.images)} img  {generation.prompt[:50]!r}'
		print(json_format.MessageToJson(generation, indent=None) if args.json else line)
	say_empty(found, 'no generations match', args.json)
	if len(found) > limit:
		print(f'showing the newest {limit}; more with --limit N or --all', file=sys.stderr)


def _regenerate(client: Client, args: argparse.Namespace) -> None:
	images = [GeneratedImage.from_event(event) for event in client.regenerate(args.id) if event.HasField('image')]
	paths = numbered(args.output, len(images), images[0].suffix if images else '.png')
	prepare_outputs(paths, args.overwrite)
	for image, path in zip(images, paths, strict=True):
		write_output(path, image.data)
		print(f'{path} (seed {image.seed})')


def _export(client: Client, args: argparse.Namespace) -> None:
	prepare_outputs([args.file], args.overwrite)
	try:
		with args.file.open('wb') as file:
			for data in client.export_archive(args.images):
				file.write(data)
	except OSError as exc:
		raise LocalFileError(f'cannot write {args.file}: {exc.strerror}') from None
	print(f'wrote {args.file} ({args.file.stat().st_size} bytes)', file=sys.stderr)


def history_command(client: Client, args: argparse.Namespace) -> int:
	action = args.history_command
	if action == 'list':
		_list(client, args)
	elif action == 'show':
		print(json_format.MessageToJson(client.get_generation(args.id)))
	elif action == 'rm':
		client.delete_generation(args.id)
		print(f'deleted {args.id}', file=sys.stderr)
	elif action == 'update':
		tags = None if args.tags is None else [tag.strip() for tag in args.tags.split(',') if tag.strip()]
		updated = client.update_generation(args.id, favourite=args.favourite, tags=tags, note=args.note)
		print(json_format.MessageToJson(updated, indent=None) if args.json else f'updated {updated.id}')
	elif action == 'image':
		prepare_outputs([args.output], args.overwrite)
		write_output(args.output, client.get_image(args.id, args.index, args.thumbnail))
		print(f'wrote {args.output}', file=sys.stderr)
	elif action == 'usage':
		print(json_format.MessageToJson(client.usage_stats(), indent=None if args.json else 2))
	elif action == 'export':
		_export(client, args)
	elif action == 'import':
		result = client.import_archive(_read_chunks(check_input(args.file, 'the archive')))
		print(json_format.MessageToJson(result, indent=None, always_print_fields_with_no_presence=True))
	else:
		_regenerate(client, args)
	return 0
