"""`diffusionctl loras ...`: list, show, update, enable, disable, refresh, delete, suggest, similar."""

import argparse
import sys

from google.protobuf import json_format

from diffusiond.client.cli_next import keep_for_next
from diffusiond.client.cli_output import refreshed, say_empty
from diffusiond.client.model_requests import BASES, base_name, enum_name
from diffusiond.client.sync import Client
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import model_service_pb2 as model_pb


def add_lora_commands(commands: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
	loras = commands.add_parser('loras', help='the LoRA catalog', epilog='example: diffusionctl loras list --base sd1')
	actions = loras.add_subparsers(dest='loras_command', required=True)
	listing = actions.add_parser('list', help='LoRAs in the catalog')
	listing.add_argument('--base', choices=sorted(BASES), help='only LoRAs for this family')
	state = listing.add_mutually_exclusive_group()
	state.add_argument('--enabled', dest='enabled', action='store_const', const=True, help='only enabled ones')
	state.add_argument('--disabled', dest='enabled', action='store_const', const=False, help='only disabled ones')
	listing.add_argument('--tag', default='', help='only LoRAs with this tag')
	listing.add_argument('--query', default='', help='text in name, display name, trigger words or tags')
	actions.add_parser('show', help='one LoRA in full').add_argument('lora', help='id, name or hash prefix')
	update = actions.add_parser('update', help='display name, tags, trigger words, default weight, note')
	update.add_argument('lora', help='id, name or hash prefix')
	update.add_argument('--display-name', help='a name to show instead of the file name')
	update.add_argument('--tags', help='comma-separated; replaces the tags')
	update.add_argument('--triggers', help='comma-separated trigger words; "" restores the suggested ones')
	update.add_argument('--weight', type=float, help='default weight, 0..2')
	update.add_argument('--note', help='what it is for, how it works best (LoRA suggestions read it)')
	for name, text in (('enable', 'allow in Generate'), ('disable', 'refuse in Generate'), ('delete', 'unregister')):
		batch = actions.add_parser(name, help=text)
		batch.add_argument('loras', nargs='+', help='ids, names or hash prefixes')
		if name == 'delete':
			batch.add_argument('--files', action='store_true', help='also delete the files')
	refresh = actions.add_parser('refresh', help='rescan the loras folder')
	refresh.add_argument('--restore', action='store_true', help='bring back unregistered LoRAs')
	suggest = actions.add_parser('suggest', help='the LoRAs that fit a prompt and a model, with their reasons')
	suggest.add_argument('prompt', help='the prompt to find LoRAs for (A1111 syntax is read as plain words)')
	suggest.add_argument(
		'--negative', default='', help='negative prompt (a LoRA whose trigger word is in it is left out)'
	)
	suggest.add_argument('--model', default='', help="the model they must fit (default: the daemon's default model)")
	suggest.add_argument('--limit', type=int, default=0, help='how many (default 10)')
	suggest.add_argument(
		'--apply', type=int, nargs='?', const=3, metavar='N', help='add the top N (default 3) to the next generate'
	)
	similar = actions.add_parser('similar', help='the LoRAs nearest to one by their text embeddings')
	similar.add_argument('lora', help='id, name or hash prefix')
	similar.add_argument('--limit', type=int, default=0, help='how many (default 10)')


def _line(lora: lora_pb.Lora) -> str:
	state = '' if lora.enabled else ' [disabled]'
	status = enum_name('MODEL_STATUS_', model_pb.ModelStatus.Name(lora.status))
	note = f' ({status}: {lora.problem})' if lora.problem else ''
	triggers = ', '.join(lora.trigger_words) or '-'
	return f'{lora.name:<40} {base_name(lora.base):<7} r{lora.rank:<4} w{lora.default_weight:<4g} {lora.short_hash or "-":<12} {triggers}{state}{note}'


def _reasons(item: lora_pb.LoraRecommendation) -> str:
	parts = []
	for reason in item.reasons:
		kind = enum_name('REASON_KIND_', lora_pb.ReasonKind.Name(reason.kind)).replace('_', ' ')
		parts.append(f'{kind}: {", ".join(reason.matched) or reason.detail}')
	return '; '.join(parts)


def _suggest(client: Client, args: argparse.Namespace) -> int:
	found = client.recommend_loras(args.prompt, args.negative, args.model, args.limit)
	for notice in found.notices:
		print(f'note: {notice}', file=sys.stderr)
	for item in found.recommendations:
		if args.json:
			print(json_format.MessageToJson(item, indent=None))
		else:
			print(f'{item.score:.2f}  {item.prompt_tag:<40} {_reasons(item)}')
	say_empty(list(found.recommendations), f'no LoRA fits this prompt on {found.model}', args.json)
	if args.apply and found.recommendations:
		tags = [item.prompt_tag for item in found.recommendations[: args.apply]]
		keep_for_next(tags)
		print(f'the next `diffusionctl generate` adds {" ".join(tags)} to its prompt', file=sys.stderr)
	return 0


def _similar(client: Client, args: argparse.Namespace) -> int:
	found = client.similar_loras(args.lora, args.limit)
	for item in found.loras:
		print(
			json_format.MessageToJson(item, indent=None) if args.json else f'{item.similarity:.2f}  {_line(item.lora)}'
		)
	say_empty(list(found.loras), 'no LoRA of its base has an embedding yet', args.json)
	return 0


def _split(text: str | None) -> list[str] | None:
	return None if text is None else [part.strip() for part in text.split(',') if part.strip()]


def loras_command(client: Client, args: argparse.Namespace) -> int:
	action = args.loras_command
	if action == 'list':
		found = client.list_loras(args.base or '', args.enabled, args.tag, args.query)
		for lora in found:
			print(json_format.MessageToJson(lora, indent=None) if args.json else _line(lora))
		say_empty(found, 'no LoRAs match', args.json)
	elif action == 'show':
		print(json_format.MessageToJson(client.get_lora(args.lora)))
	elif action == 'update':
		lora = client.update_lora(
			args.lora,
			display_name=args.display_name,
			tags=_split(args.tags),
			trigger_words=_split(args.triggers),
			default_weight=args.weight,
			note=args.note,
		)
		print(json_format.MessageToJson(lora, indent=None) if args.json else _line(lora))
	elif action == 'suggest':
		return _suggest(client, args)
	elif action == 'similar':
		return _similar(client, args)
	elif action == 'refresh':
		result = client.refresh_loras(args.restore)
		print(refreshed(result.added, result.restored, result.removed, result.changed, result.unchanged))
	else:
		failed = 0
		for outcome in client.batch_loras(args.loras, action, getattr(args, 'files', False)):
			failed += outcome.code != 0
			print(f'{outcome.lora}: {"ok" if outcome.code == 0 else f"{outcome.reason}: {outcome.message}"}')
		if failed:
			print(f'{failed} of {len(args.loras)} failed', file=sys.stderr)
			return 1
	return 0
