"""Channels to the daemon: plain, TLS (optionally with a client certificate), and the API token.

The token travels as `authorization: Bearer <token>` call credentials, which gRPC only sends over a
secure channel: TLS, or a local one (a Unix socket or a loopback address, checked by gRPC itself).
A token for a remote address without TLS is refused rather than sent in clear text.
"""

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc

from diffusiond.client.request import ADDRESS_ENV, DEFAULT_ADDRESS

# Idempotent reads are retried on UNAVAILABLE (daemon restarting, connection lost) with backoff; nothing
# that changes state, and never Generate: a retried Generate could run the job twice.
_READS = {
	'diffusiond.v1.GenerationService': ['ListJobs'],
	'diffusiond.v1.ModelService': ['ListModels', 'GetModel'],
	'diffusiond.v1.LoraService': ['ListLoras', 'GetLora'],
	'diffusiond.v1.StyleService': ['ListStyles', 'GetStyle', 'ExportStyles'],
	'diffusiond.v1.HistoryService': ['ListGenerations', 'GetGeneration', 'GetImage', 'GetUsageStats'],
	'diffusiond.v1.SystemService': ['GetSystemInfo'],
}
RETRY_POLICY = {
	'maxAttempts': 5,
	'initialBackoff': '0.2s',
	'maxBackoff': '3s',
	'backoffMultiplier': 2,
	'retryableStatusCodes': ['UNAVAILABLE'],
}
SERVICE_CONFIG = json.dumps(
	{
		'methodConfig': [
			{
				'name': [
					{'service': service, 'method': method} for service, methods in _READS.items() for method in methods
				],
				'retryPolicy': RETRY_POLICY,
			}
		]
	}
)
TOKEN_ENV = 'DIFFUSIOND_TOKEN'
# Large enough for a 2048x2048 PNG in one message, matching the daemon.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
	('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
	('grpc.max_send_message_length', MAX_MESSAGE_BYTES),
	# Ping a silent connection (a long model load) so NATs and proxies keep it; the daemon allows 10 s.
	('grpc.keepalive_time_ms', 30_000),
	('grpc.keepalive_timeout_ms', 20_000),
	('grpc.enable_retries', 1),
	('grpc.service_config', SERVICE_CONFIG),
]
_LOOPBACK = ('localhost', '127.', '[::1]', '::1', 'ip6-localhost')


@dataclass(frozen=True)
class Tls:
	"""TLS to the daemon. `ca`: PEM roots to trust (None = the system's); `cert` + `key`: a client certificate."""

	ca: Path | None = None
	cert: Path | None = None
	key: Path | None = None
	server_name: str | None = None  # the name the certificate must carry, when it differs from the address

	def credentials(self) -> grpc.ChannelCredentials:
		if (self.cert is None) != (self.key is None):
			raise ValueError('a client certificate needs both cert and key')
		return grpc.ssl_channel_credentials(
			root_certificates=self.ca.read_bytes() if self.ca else None,
			private_key=self.key.read_bytes() if self.key else None,
			certificate_chain=self.cert.read_bytes() if self.cert else None,
		)


class _Bearer(grpc.AuthMetadataPlugin):
	def __init__(self, token: str) -> None:
		self._metadata = (('authorization', f'Bearer {token}'),)

	def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
		callback(self._metadata, None)


@dataclass(frozen=True)
class Connection:
	"""Where and how to reach the daemon. Unset address/token fall back to $DIFFUSIOND_ADDRESS/$DIFFUSIOND_TOKEN."""

	address: str
	token: str | None = None
	tls: Tls | None = None

	@classmethod
	def resolve(cls, address: str | None = None, token: str | None = None, tls: Tls | None = None) -> 'Connection':
		return cls(
			address=address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS,
			token=token or os.environ.get(TOKEN_ENV) or None,
			tls=tls,
		)

	@property
	def parts(self) -> list[str]:
		"""The daemons named: `a:50051,b:50051` is two (several daemons on one database), anything else one."""
		return [part.strip() for part in self.address.split(',') if part.strip()] or [self.address]

	@property
	def balanced(self) -> bool:
		"""Calls spread over the daemons (gRPC's round_robin): several addresses, or a dns:/// name."""
		return len(self.parts) > 1 or self.address.startswith('dns:')

	@property
	def local(self) -> bool:
		return all(part.startswith(('unix:', 'unix-abstract:', *_LOOPBACK)) for part in self.parts)

	def target(self) -> str:
		"""The gRPC target: the address itself, or for several `host:port` the `ipv4:` (else `ipv6:`) list of their
		addresses, looked up now (IPv4 preferred), which round_robin spreads calls over."""
		if len(self.parts) == 1:
			return self.address
		found: dict[int, list[str]] = {socket.AF_INET: [], socket.AF_INET6: []}
		for part in self.parts:
			host, sep, port = part.rpartition(':')
			if not sep or not port.isdigit():
				raise ValueError(f'{part!r} is not host:port: several daemons are named as host:port,host:port')
			looked = socket.getaddrinfo(host.strip('[]'), int(port), type=socket.SOCK_STREAM)
			family = socket.AF_INET if any(entry[0] == socket.AF_INET for entry in looked) else socket.AF_INET6
			ips = [str(entry[4][0]) for entry in looked if entry[0] == family]
			found[family] += [f'{ip}:{port}' if family == socket.AF_INET else f'[{ip}]:{port}' for ip in ips]
		if found[socket.AF_INET] and found[socket.AF_INET6]:
			raise ValueError(f'{self.address} mixes IPv4 and IPv6 daemons: name them by one family, or use dns:///')
		if found[socket.AF_INET]:
			return 'ipv4:' + ','.join(dict.fromkeys(found[socket.AF_INET]))
		return 'ipv6:' + ','.join(dict.fromkeys(found[socket.AF_INET6]))

	def options(self) -> list[tuple[str, int | str]]:
		options = list(CHANNEL_OPTIONS)
		if self.balanced:
			options.append(('grpc.lb_policy_name', 'round_robin'))
		name = self.tls.server_name if self.tls else None
		return [*options, ('grpc.ssl_target_name_override', name)] if name else options

	def credentials(self) -> grpc.ChannelCredentials | None:
		"""None for a plain channel; else TLS or local credentials, with the token as call credentials."""
		if self.tls is not None:
			base = self.tls.credentials()
		elif self.token is None:
			return None
		elif self.local:
			kind = (
				grpc.LocalConnectionType.UDS if self.address.startswith('unix') else grpc.LocalConnectionType.LOCAL_TCP
			)
			base = grpc.local_channel_credentials(kind)
		else:
			raise ValueError(
				f'refusing to send the API token in clear text to {self.address}: use TLS (--tls / --tls-ca) '
				'or a local address (unix:PATH, localhost)'
			)
		if self.token is None:
			return base
		return grpc.composite_channel_credentials(base, grpc.metadata_call_credentials(_Bearer(self.token)))

	def channel(self) -> grpc.Channel:
		credentials = self.credentials()
		if credentials is None:
			return grpc.insecure_channel(self.target(), options=self.options())
		return grpc.secure_channel(self.target(), credentials, options=self.options())

	def aio_channel(self) -> grpc.aio.Channel:
		credentials = self.credentials()
		if credentials is None:
			return grpc.aio.insecure_channel(self.target(), options=self.options())
		return grpc.aio.secure_channel(self.target(), credentials, options=self.options())
