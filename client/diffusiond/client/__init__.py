"""Python client for diffusiond (sync and asyncio). Imports without torch."""

from diffusiond.client.aio import AsyncClient
from diffusiond.client.connection import Tls
from diffusiond.client.errors import (
	AlreadyExists,
	Cancelled,
	DeadlineExceeded,
	DiffusiondError,
	FailedPrecondition,
	InternalError,
	InvalidArgument,
	NotFound,
	ResourceExhausted,
	Unauthenticated,
	Unavailable,
)
from diffusiond.client.images import GeneratedImage
from diffusiond.client.request import (
	GenerateOptions,
	build_generate_request,
	parse_sampler,
	parse_schedule,
	sampler_names,
	schedule_names,
)
from diffusiond.client.sync import Client

__all__ = [
	'AlreadyExists',
	'AsyncClient',
	'Cancelled',
	'Client',
	'DeadlineExceeded',
	'DiffusiondError',
	'FailedPrecondition',
	'GenerateOptions',
	'GeneratedImage',
	'InternalError',
	'InvalidArgument',
	'NotFound',
	'ResourceExhausted',
	'Tls',
	'Unauthenticated',
	'Unavailable',
	'build_generate_request',
	'parse_sampler',
	'parse_schedule',
	'sampler_names',
	'schedule_names',
]
