"""The grpc.aio server: message size limits, the error interceptor, every service, health and reflection."""

from collections.abc import Callable

import grpc
from grpc_reflection.v1alpha import reflection

from diffusiond.server.interceptors import ErrorInterceptor
from diffusiond.server.settings import Settings
from diffusiond.v1 import (
	generation_service_pb2,
	history_service_pb2,
	lora_service_pb2,
	model_service_pb2,
	style_service_pb2,
	system_service_pb2,
)

SERVICE_NAMES = (
	generation_service_pb2.DESCRIPTOR.services_by_name['GenerationService'].full_name,
	model_service_pb2.DESCRIPTOR.services_by_name['ModelService'].full_name,
	lora_service_pb2.DESCRIPTOR.services_by_name['LoraService'].full_name,
	style_service_pb2.DESCRIPTOR.services_by_name['StyleService'].full_name,
	history_service_pb2.DESCRIPTOR.services_by_name['HistoryService'].full_name,
	system_service_pb2.DESCRIPTOR.services_by_name['SystemService'].full_name,
)
HEALTH_SERVICE = 'grpc.health.v1.Health'
Registration = Callable[[grpc.aio.Server], None]


def build_server(settings: Settings, registrations: list[Registration]) -> grpc.aio.Server:
	"""A server with every servicer registered (each `registration` adds one) and reflection on."""
	size = settings.server.max_message_bytes
	server = grpc.aio.server(
		interceptors=[ErrorInterceptor()],
		options=[('grpc.max_send_message_length', size), ('grpc.max_receive_message_length', size)],
	)
	for register in registrations:
		register(server)
	reflection.enable_server_reflection((*SERVICE_NAMES, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
	return server
