"""uvicorn inside the daemon's event loop: the socket bound here (a taken port is a clear StartupError, never
uvicorn's exit), TLS from the daemon's own settings, no lifespan and no signal handlers of its own."""

import asyncio
import logging
import socket
import ssl

import uvicorn
from starlette.types import ASGIApp

from diffusiond.server.listen import StartupError
from diffusiond.server.settings import SecuritySettings

log = logging.getLogger(__name__)
_GRACE_S = 5.0  # for responses in flight once the manager has drained


def _bind(host: str, port: int) -> socket.socket:
	family = socket.AF_INET6 if ':' in host else socket.AF_INET
	sock = socket.socket(family, socket.SOCK_STREAM)
	sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	# inherited by every accepted connection: without it a response waits ~40 ms for the client's delayed ACK
	sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
	try:
		sock.bind((host, port))
	except OSError as exc:
		sock.close()
		raise StartupError(
			f'cannot listen for HTTP on {host}:{port}: {exc.strerror}; choose another --http-port '
			'(DIFFUSIOND_HTTP__PORT), or 0 for any free one'
		) from exc
	sock.listen(128)
	sock.setblocking(False)
	return sock


class HttpServer:
	def __init__(self, app: ASGIApp, host: str, port: int, security: SecuritySettings) -> None:
		tls = security.tls_cert is not None
		self._config = uvicorn.Config(
			app,
			lifespan='off',
			log_config=None,  # the daemon's logging stays as it is
			log_level='warning',
			access_log=False,
			server_header=False,
			timeout_graceful_shutdown=int(_GRACE_S),
			ssl_certfile=str(security.tls_cert) if tls else None,
			ssl_keyfile=str(security.tls_key) if tls else None,
			ssl_ca_certs=str(security.tls_client_ca) if security.tls_client_ca is not None else None,
			ssl_cert_reqs=ssl.CERT_REQUIRED if security.tls_client_ca is not None else ssl.CERT_NONE,
		)
		self._socket = _bind(host, port)
		self.port: int = self._socket.getsockname()[1]
		self.tls = tls
		self._server = uvicorn.Server(self._config)
		self._task: asyncio.Task[None] | None = None

	async def start(self) -> None:
		self._config.load()
		self._server.lifespan = self._config.lifespan_class(self._config)
		await self._server.startup(sockets=[self._socket])
		self._task = asyncio.create_task(self._server.main_loop())

	def close(self) -> None:
		"""Gives the port back without having served (the daemon failed to start)."""
		self._socket.close()

	async def stop(self) -> None:
		if self._task is None:
			self.close()
			return
		self._server.should_exit = True
		await self._task
		await self._server.shutdown(sockets=[self._socket])
		self._socket.close()
