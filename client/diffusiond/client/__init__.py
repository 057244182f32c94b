"""Python client for diffusiond (sync and asyncio). Imports without torch."""

from diffusiond.client.aio import AsyncClient
from diffusiond.client.images import GeneratedImage
from diffusiond.client.request import GenerateOptions, build_generate_request, parse_sampler, sampler_names
from diffusiond.client.sync import Client

__all__ = [
	'AsyncClient',
	'Client',
	'GenerateOptions',
	'GeneratedImage',
	'build_generate_request',
	'parse_sampler',
	'sampler_names',
]
