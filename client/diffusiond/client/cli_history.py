"""`diffusionctl history ...`: list, show, rm, update, image, usage, regenerate, export, import."""

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import json_format

from diffusiond.client.images import GeneratedImage
from diffusiond.client.sync import Client


def add_history_commands(commands: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
	history = commands.add_parser(
		'history', help='past generations', epilog='example: diffusionctl history list -q fox'
	)
	actions = history.add_subparsers(dest='history_command', required=True)
	listing = actions.add_parser('list', help='newest first')
	listing.add_argument('-q', '--query', default='', help='text in the prompt')
	listing.add_argument('--model', default='')
	listing.add_argument('--lora', default='')
	listing.add_argument('--style', default='')
	listing.add_argument('--favourites', action='store_true')
	listing.add_argument('-n', '--limit', type=int, default=20)
	actions.add_parser('show', help='one generation in full').add_argument('id')
	actions.add_parser('rm', help='delete a generation and its images').add_argument('id')
	update = actions.add_parser('update', help='favourite, tags or note (only the options given)')
	update.add_argument('id')
	update.add_argument('--favourite', action=argparse.BooleanOptionalAction, default=None)
	update.add_argument('--tags', help='comma-separated; "" clears them')
	update.add_argument('--note')
	image = actions.add_parser('image', help='save one image of a generation (or a JPEG thumbnail)')
	image.add_argument('id')
	image.add_argument('--index', type=int, default=0)
	image.add_argument('--thumbnail', type=int, default=0, help='longest side in pixels (16..1024)')
	image.add_argument('-o', '--output', type=Path, required=True)
	actions.add_parser('usage', help='jobs and images per model, LoRA and style; images per day')
	regenerate = actions.add_parser('regenerate', help='run a generation again (same pixels on the same model)')
	regenerate.add_argument('id')
	regenerate.add_argument('-o', '--output', type=Path, default=Path('regenerated.png'))
	export = actions.add_parser('export', help='write an archive: styles, catalog metadata, history')
	export.add_argument('file', type=Path)
	export.add_argument('--images', action='store_true', help='include the image files')
	actions.add_parser('import', help='read an archive (all or nothing)').add_argument('file', type=Path)


def _read_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
	with path.open('rb') as file:
		while data := file.read(size):
			yield data


def history_command(client: Client, args: argparse.Namespace) -> int:
	action = args.history_command
	if action == 'list':
		found = client.list_generations(args.query, args.model, args.lora, args.style, args.favourites, args.limit)
		for generation in found:
			when = generation.create_time.ToDatetime().strftime('%Y-%m-%d %H:%M:%S')
			line = f'{generation.id}  {when}  {generation.model_name:<20} {len(generation.images)} img  {generation.prompt[:50]!r}'
			print(json_format.MessageToJson(generation, indent=None) if args.json else line)
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
		args.output.write_bytes(client.get_image(args.id, args.index, args.thumbnail))
		print(f'wrote {args.output}', file=sys.stderr)
	elif action == 'usage':
		print(json_format.MessageToJson(client.usage_stats(), indent=None if args.json else 2))
	elif action == 'export':
		with args.file.open('wb') as file:
			for data in client.export_archive(args.images):
				file.write(data)
		print(f'wrote {args.file} ({args.file.stat().st_size} bytes)', file=sys.stderr)
	elif action == 'import':
		result = client.import_archive(_read_chunks(args.file))
		print(json_format.MessageToJson(result, indent=None, always_print_fields_with_no_presence=True))
	else:
		images = [GeneratedImage.from_event(event) for event in client.regenerate(args.id) if event.HasField('image')]
		for index, image in enumerate(images):
			path = (
				args.output
				if len(images) == 1
				else args.output.with_name(f'{args.output.stem}-{index}{args.output.suffix}')
			)
			image.save(path)
			print(f'{path} (seed {image.seed})')
	return 0
