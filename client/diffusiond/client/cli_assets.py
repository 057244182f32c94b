"""`diffusionctl embeddings` and `diffusionctl vaes`: the embeddings and VAE folders as the daemon lists them."""

import argparse

from google.protobuf import json_format

from diffusiond.client.sync import Client
from diffusiond.v1 import model_service_pb2 as model_pb


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
