"""`diffusionctl embeddings|vaes|controlnets|upscalers`: those folders as the daemon lists them; `diffusionctl upscale`."""

import argparse

from google.protobuf import json_format

from diffusiond.client.cli_files import image_format, prepare_outputs, read_input, write_output
from diffusiond.client.progress import ProgressBar
from diffusiond.client.sync import Client
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import model_service_pb2 as model_pb

_FORMATS = {'png': gen_pb.IMAGE_FORMAT_PNG, 'jpeg': gen_pb.IMAGE_FORMAT_JPEG, 'webp': gen_pb.IMAGE_FORMAT_WEBP}


def assets_command(client: Client, args: argparse.Namespace) -> int:
	listings = {'embeddings': client.list_embeddings, 'vaes': client.list_vaes, 'controlnets': client.list_controlnets}
	found = listings[args.command](args.base)
	if args.json:
		print('[' + ','.join(json_format.MessageToJson(item, indent=None) for item in found) + ']')
		return 0
	for item in found:
		base = model_pb.ModelBase.Name(item.base).removeprefix('MODEL_BASE_').lower().replace('unspecified', '?')
		status = model_pb.ModelStatus.Name(item.status).removeprefix('MODEL_STATUS_').lower()
		shape = {'embeddings': f'{item.vectors} vectors', 'vaes': f'{item.width} latent channels'}.get(
			args.command, f'width {item.width}'
		)
		problem = f'  ({item.problem})' if item.problem else ''
		print(f'{item.name}  {base}  {shape}  {item.short_hash or "-"}  {status}{problem}')
	return 0


def upscalers_command(client: Client, args: argparse.Namespace) -> int:
	found = client.list_upscalers()
	if args.json:
		print(json_format.MessageToJson(found, indent=None))
		return 0
	for item in found.upscalers:
		status = model_pb.ModelStatus.Name(item.status).removeprefix('MODEL_STATUS_').lower()
		problem = f'  ({item.problem})' if item.problem else ''
		print(f'{item.name}  {item.architecture or "?"}  x{item.scale}  {item.short_hash or "-"}  {status}{problem}')
	print(f'built in: {", ".join(found.builtin)}')
	return 0


def upscale_command(client: Client, args: argparse.Namespace) -> int:
	"""Upscales one image file into -o, with a progress bar over the tiles."""
	image = read_input(args.input, 'the input image')
	output_format = _FORMATS[image_format(args.output, None) or 'png']
	prepare_outputs([args.output], args.overwrite)
	bar = ProgressBar()
	for event in client.upscale(image, args.upscaler, args.scale, output_format):
		kind = event.WhichOneof('event')
		if kind == 'progress':
			bar.update(event.progress.step, event.progress.total_steps, event.progress.eta_seconds)
		elif kind == 'image':
			bar.finish()
			write_output(args.output, event.image.data)
			print(f'{args.output} ({event.image.width}x{event.image.height})')
	return 0
