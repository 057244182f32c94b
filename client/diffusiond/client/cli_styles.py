"""`diffusionctl styles ...`: list, show, add, update, rm, import, export."""

import argparse
import sys
from pathlib import Path

from google.protobuf import json_format

from diffusiond.client.cli_files import prepare_outputs, read_input, write_output
from diffusiond.client.cli_output import say_empty
from diffusiond.client.sync import Client


def add_style_commands(commands: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
	styles = commands.add_parser(
		'styles', help='prompt styles', epilog='example: diffusionctl styles add Ink --prompt "ink drawing of {prompt}"'
	)
	actions = styles.add_subparsers(dest='styles_command', required=True)
	actions.add_parser('list', help='styles by name').add_argument('--query', default='', help='text to look for')
	actions.add_parser('show', help='one style in full').add_argument('style', help='id or name')
	add = actions.add_parser('add', help='create a style ({prompt} marks where the prompt goes)')
	add.add_argument('name', help="1-100 letters, digits, spaces and .,'()+&!#@/-")
	add.add_argument('--prompt', default='', help='the template; {prompt} marks where the prompt goes')
	add.add_argument('--negative', default='', help='the negative template')
	add.add_argument('--description', default='', help='free text')
	add.add_argument('--tags', default='', help='comma-separated')
	update = actions.add_parser('update', help='change a style (only the options given)')
	update.add_argument('style', help='id or name')
	update.add_argument('--name', help='a new name')
	update.add_argument('--prompt', help='a new template')
	update.add_argument('--negative', help='a new negative template')
	update.add_argument('--description', help='a new description')
	actions.add_parser('rm', help='delete a style').add_argument('style', help='id or name')
	importer = actions.add_parser('import', help='read an A1111 styles.csv (all rows or none)')
	importer.add_argument('file', type=Path, help='an A1111 styles.csv')
	importer.add_argument('--overwrite', action='store_true', help='replace styles that exist already')
	exporter = actions.add_parser('export', help='write every style as an A1111 styles.csv')
	exporter.add_argument('-o', '--output', type=Path, help='file to write (default: standard output)')
	exporter.add_argument('--overwrite', action='store_true', help='replace the file if it exists (default: refuse)')


def styles_command(client: Client, args: argparse.Namespace) -> int:
	action = args.styles_command
	if action == 'list':
		found = client.list_styles(args.query)
		for style in found:
			line = f'{style.name:<30} {style.prompt[:60]!r}{" [built-in]" if style.builtin else ""}'
			print(json_format.MessageToJson(style, indent=None) if args.json else line)
		say_empty(found, 'no styles match', args.json)
	elif action == 'show':
		print(json_format.MessageToJson(client.get_style(args.style)))
	elif action == 'add':
		tags = [tag.strip() for tag in args.tags.split(',') if tag.strip()]
		style = client.create_style(args.name, args.prompt, args.negative, args.description, tags)
		print(f'created {style.name} ({style.id})')
	elif action == 'update':
		style = client.update_style(
			args.style, name=args.name, prompt=args.prompt, negative_prompt=args.negative, description=args.description
		)
		print(json_format.MessageToJson(style, indent=None) if args.json else f'updated {style.name}')
	elif action == 'rm':
		print(f'deleted {client.delete_style(args.style).name}')
	elif action == 'import':
		result = client.import_styles(read_input(args.file, 'the styles file'), args.overwrite)
		print(f'created {len(result.created)}, updated {len(result.updated)}, skipped {len(result.skipped)}')
	else:
		data = client.export_styles()
		if args.output:
			prepare_outputs([args.output], args.overwrite)
			write_output(args.output, data)
			print(f'wrote {args.output}', file=sys.stderr)
		else:
			sys.stdout.write(data.decode('utf-8-sig'))
	return 0
