"""Small helpers shared by the tests."""

import io

import grpc
import numpy as np
import numpy.typing as npt
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image

from diffusiond.v1 import generation_service_pb2 as gen_pb


async def collect(call: grpc.aio.UnaryStreamCall[gen_pb.GenerateRequest, gen_pb.GenerateEvent]) -> list[gen_pb.GenerateEvent]:
	return [event async for event in call]


def kinds(events: list[gen_pb.GenerateEvent]) -> list[str]:
	return [str(event.WhichOneof('event')) for event in events]


def pixels(data: bytes) -> npt.NDArray[np.uint8]:
	return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def error_details(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
	"""The ErrorInfo and the BadRequest violated fields attached to an error status."""
	status = rpc_status.from_call(error)
	assert status is not None, 'the error carries no google.rpc.Status'
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
