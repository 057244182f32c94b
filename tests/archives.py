"""Building archives for tests: a real export taken apart, changed and zipped again."""

import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterable

import grpc

from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc

Json = dict[str, object]


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[history_pb.ArchiveChunk]:
	for start in range(0, len(data), size):
		yield history_pb.ArchiveChunk(data=data[start : start + size])


def zip_members(members: Iterable[tuple[str, bytes]], stored: bool = False) -> bytes:
	buffer = io.BytesIO()
	method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
	with zipfile.ZipFile(buffer, 'w', compression=method) as archive:
		for name, data in members:
			archive.writestr(name, data)
	return buffer.getvalue()


async def export(chan: grpc.aio.Channel, include_images: bool = True) -> dict[str, bytes]:
	"""An export of the daemon behind `chan`, as member name → bytes."""
	history = history_grpc.HistoryServiceStub(chan)
	request = history_pb.ExportArchiveRequest(include_images=include_images)
	data = b''.join([chunk.data async for chunk in history.ExportArchive(request)])
	with zipfile.ZipFile(io.BytesIO(data)) as archive:
		return {name: archive.read(name) for name in archive.namelist()}


def records(members: dict[str, bytes]) -> list[Json]:
	lines = members['generations.jsonl'].decode().splitlines()
	return [json.loads(line) for line in lines if line.strip()]


def with_records(members: dict[str, bytes], changed: list[Json]) -> dict[str, bytes]:
	text = ''.join(json.dumps(record) + '\n' for record in changed)
	return {**members, 'generations.jsonl': text.encode()}


def rezip(members: dict[str, bytes]) -> bytes:
	return zip_members(members.items())


def zip_with_filler(members: dict[str, bytes], name: str, head: bytes, filler: bytes, size: int, tail: bytes) -> bytes:
	"""`members` plus `name` = head + filler repeated to `size` bytes + tail, deflated while written (a bomb
	built without ever holding it in memory)."""
	buffer = io.BytesIO()
	with zipfile.ZipFile(buffer, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
		for member, data in members.items():
			if member != name:
				archive.writestr(member, data)
		with archive.open(name, 'w', force_zip64=True) as big:
			big.write(head)
			block = filler * (1024 * 1024 // len(filler))
			for _ in range(size // len(block)):
				big.write(block)
			big.write(tail)
	return buffer.getvalue()
