"""grpc.health.v1: Check (with a message for an unknown service), Watch and List, all open without a token."""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.server.rpc import SERVICE_NAMES
from tests.conftest import StartDaemon
from tests.helpers import rpc_error


async def test_list_and_check_answer_every_service(start_fake: StartDaemon) -> None:
	daemon = await start_fake(overrides={'security': {'token': 's3cret'}})
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		health = health_pb2_grpc.HealthStub(chan)
		listed = await health.List(health_pb2.HealthListRequest())
		unknown = await rpc_error(health.Check(health_pb2.HealthCheckRequest(service='no.such.Service')))
		known = await health.Check(health_pb2.HealthCheckRequest(service='diffusiond.v1.GenerationService'))
	assert set(listed.statuses) == {'', *SERVICE_NAMES}
	assert all(status.status == health_pb2.HealthCheckResponse.SERVING for status in listed.statuses.values())
	assert unknown.code() == grpc.StatusCode.NOT_FOUND
	assert "'no.such.Service'" in str(unknown.details())
	assert 'diffusiond.v1.ModelService' in str(unknown.details())
	assert known.status == health_pb2.HealthCheckResponse.SERVING
