"""`diffusionctl history ...`: list, show, rm, regenerate."""

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
