"""Small helpers shared by the tests."""

import io
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

import grpc
import numpy as np
import numpy.typing as npt
from google.rpc import error_details_pb2, status_pb2
from PIL import Image

from diffusiond.server.styles.schemas import StyleRecord
from diffusiond.v1 import generation_service_pb2 as gen_pb

Req = TypeVar('Req')  # Generate, Regenerate and WatchJob all stream GenerateEvents


async def collect(
	call: grpc.aio.UnaryStreamCall[Req, gen_pb.GenerateEvent],
) -> list[gen_pb.GenerateEvent]:
	return [event async for event in call]


async def until_error(
	call: grpc.aio.UnaryStreamCall[Req, gen_pb.GenerateEvent],
) -> tuple[list[gen_pb.GenerateEvent], grpc.aio.AioRpcError]:
	"""The events a stream yields before it ends with an error status, and that error."""
	events: list[gen_pb.GenerateEvent] = []
	try:
		async for event in call:
			events.append(event)
	except grpc.aio.AioRpcError as error:
		return events, error
	raise AssertionError(f'the stream ended without an error after {kinds(events)}')


async def next_of(call: grpc.aio.UnaryStreamCall[Req, gen_pb.GenerateEvent], kind: str) -> gen_pb.GenerateEvent:
	"""Reads the stream up to and including the first event of `kind`."""
	async for event in call:
		if event.WhichOneof('event') == kind:
			return event
	raise AssertionError(f'stream ended before a {kind} event')


def kinds(events: list[gen_pb.GenerateEvent]) -> list[str]:
	return [str(event.WhichOneof('event')) for event in events]


Pixels = npt.NDArray[np.uint8]


def pixels(data: bytes) -> Pixels:
	return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def rpc_status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
	"""The google.rpc.Status the server attached to an error (grpc-status-details-bin trailer)."""
	metadata = error.trailing_metadata()  # grpc.aio.Metadata at run time (grpc-stubs say a tuple)
	if isinstance(metadata, grpc.aio.Metadata):
		for value in metadata.get_all('grpc-status-details-bin'):
			if isinstance(value, bytes):
				return status_pb2.Status.FromString(value)
	raise AssertionError(f'the error carries no google.rpc.Status: {error}')


def error_details(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
	"""The ErrorInfo and the BadRequest violated fields attached to an error status."""
	status = rpc_status_of(error)
	info = error_details_pb2.ErrorInfo()
	fields: list[str] = []
	for detail in status.details:
		if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
			detail.Unpack(info)
		if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
			bad = error_details_pb2.BadRequest()
			detail.Unpack(bad)
			fields.extend(v.field for v in bad.field_violations)
	return info, fields


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
	"""The error a unary call ends with (fails the test if it succeeds)."""
	try:
		await call
	except grpc.aio.AioRpcError as error:
		return error
	raise AssertionError('the call succeeded')


def style_record(name: str, prompt: str, negative: str = '') -> StyleRecord:
	"""A stored style as the store returns it."""
	now = datetime.now(UTC)
	return StyleRecord(
		id=name,
		name=name,
		prompt=prompt,
		negative_prompt=negative,
		description='',
		tags=[],
		builtin=False,
		created_at=now,
		updated_at=now,
		last_used_at=None,
	)
