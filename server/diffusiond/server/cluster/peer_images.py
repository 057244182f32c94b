"""GetImage through a daemon that does not hold the file: it asks the node that made the image (its address in the
nodes table) with this daemon's token, once (a forwarded call is never forwarded again). A node that is not
serving answers nothing: UNAVAILABLE, to ask again once it is back."""

from pathlib import Path

import grpc

from diffusiond.server.cluster.heartbeat import Heartbeat
from diffusiond.server.errors import NotFoundError, UnavailableError
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc

FORWARDED = 'x-diffusiond-forwarded'  # set on a call one daemon makes to another
_TIMEOUT_S = 30.0


class PeerImages:
	def __init__(self, heartbeat: Heartbeat, token: str | None, tls: bool, peer_ca: Path | None) -> None:
		self._heartbeat = heartbeat
		self._token = token
		self._tls = tls
		self._peer_ca = peer_ca

	def _channel(self, address: str) -> grpc.aio.Channel:
		if not self._tls:
			return grpc.aio.insecure_channel(address)
		roots = self._peer_ca.read_bytes() if self._peer_ca is not None else None
		return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots))

	async def fetch(self, node: str, request: history_pb.GetImageRequest) -> history_pb.GetImageResponse:
		record = next((found for found in await self._heartbeat.repo.all() if found.id == node), None)
		if record is None or not self._heartbeat.alive(record):
			raise UnavailableError(
				f'image {request.index} of {request.generation_id} is in the outputs folder of node {node}, which is '
				'not serving now; ask again once it is back'
			)
		metadata = [(FORWARDED, '1'), *([('authorization', f'Bearer {self._token}')] if self._token else [])]
		async with self._channel(record.address) as channel:
			stub: history_grpc.HistoryServiceAsyncStub = history_grpc.HistoryServiceStub(channel)
			try:
				return await stub.GetImage(request, metadata=metadata, timeout=_TIMEOUT_S)
			except grpc.aio.AioRpcError as exc:
				if exc.code() == grpc.StatusCode.NOT_FOUND:
					raise NotFoundError(f'node {node}: {exc.details()}') from None
				raise UnavailableError(
					f'node {node} ({record.address}) did not give image {request.index} of {request.generation_id}: '
					f'{exc.code().name}: {exc.details()}'
				) from None
