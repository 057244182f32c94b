"""The grpc.aio server: size limits, keepalive, the gate and error interceptors, every service, reflection."""

from collections.abc import Callable

import grpc
from grpc_reflection.v1alpha import reflection

from diffusiond.server.gate import Gate
from diffusiond.server.interceptors import ErrorInterceptor
from diffusiond.server.settings import ServerSettings
from diffusiond.v1 import (
	asset_service_pb2,
	generation_service_pb2,
	history_service_pb2,
	lora_service_pb2,
	model_service_pb2,
	style_service_pb2,
	system_service_pb2,
)

SERVICE_MODULES = (
	generation_service_pb2,
	model_service_pb2,
	lora_service_pb2,
	asset_service_pb2,
	style_service_pb2,
	history_service_pb2,
	system_service_pb2,
)
SERVICES = tuple(service for module in SERVICE_MODULES for service in module.DESCRIPTOR.services_by_name.values())
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)
HEALTH_SERVICE = 'grpc.health.v1.Health'
Registration = Callable[[grpc.aio.Server], None]


def server_options(settings: ServerSettings) -> list[tuple[str, int]]:
	"""Channel arguments: message caps, keepalive (silent streams survive a long load), no port sharing."""
	return [
		('grpc.max_send_message_length', settings.max_message_bytes),
		('grpc.max_receive_message_length', settings.max_receive_bytes),
		('grpc.keepalive_time_ms', int(settings.keepalive_time_s * 1000)),
		('grpc.keepalive_timeout_ms', int(settings.keepalive_timeout_s * 1000)),
		('grpc.keepalive_permit_without_calls', 1),
		('grpc.http2.min_ping_interval_without_data_ms', int(settings.min_client_ping_s * 1000)),
		('grpc.http2.max_pings_without_data', 0),
		('grpc.so_reuseport', 0),  # a second daemon on the same port fails instead of sharing it
	]


def build_server(settings: ServerSettings, gate: Gate, registrations: list[Registration]) -> grpc.aio.Server:
	"""A server with every servicer registered (each `registration` adds one) and reflection on.

	No limit on concurrent RPCs: long-lived streams (health Watch, job streams) must never lock out
	calls; the job queue is the limit that counts jobs.
	"""
	server = grpc.aio.server(
		interceptors=[gate, ErrorInterceptor(settings.stalled_reader_timeout_s)], options=server_options(settings)
	)
	for register in registrations:
		register(server)
	reflection.enable_server_reflection((*SERVICE_NAMES, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
	return server
