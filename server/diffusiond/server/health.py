"""grpc.health.v1: gRPC's asyncio servicer, completed with List and a message for an unknown service."""

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from diffusiond.server.interceptors import Context


class Health(HealthServicer):
	"""Check, Watch (gRPC's own) and List; health is open to every caller, with or without the token."""

	def _statuses(self) -> dict[str, int]:
		return dict(self._server_status)

	async def Check(self, request: health_pb2.HealthCheckRequest, context: Context) -> health_pb2.HealthCheckResponse:
		statuses = self._statuses()
		if request.service not in statuses:
			known = ', '.join(repr(name) for name in sorted(statuses))
			await context.abort(
				grpc.StatusCode.NOT_FOUND,
				f'no service {request.service[:200]!r} reports health here; ask for one of {known} ("" = the daemon)',
			)
		return health_pb2.HealthCheckResponse(status=statuses[request.service])

	async def List(self, request: health_pb2.HealthListRequest, context: Context) -> health_pb2.HealthListResponse:
		return health_pb2.HealthListResponse(
			statuses={name: health_pb2.HealthCheckResponse(status=status) for name, status in self._statuses().items()}
		)
