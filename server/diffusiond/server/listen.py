"""Where the daemon listens: TCP (plain or TLS, optionally mutual) and a Unix domain socket."""

import contextlib
import logging
import os
import socket
import stat
from pathlib import Path

import grpc
from pydantic import BaseModel

from diffusiond.server.settings import SecuritySettings, ServerSettings

log = logging.getLogger(__name__)
_MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes including the final NUL


class StartupError(Exception):
	"""The daemon cannot start as configured; the message says what to change."""


class Endpoints(BaseModel):
	port: int = 0  # the bound TCP port (0 = no TCP)
	socket: Path | None = None
	tls: bool = False

	def log(self, host: str) -> None:
		if self.port:
			log.info('diffusiond listening on %s:%d (%s)', host, self.port, 'TLS' if self.tls else 'plaintext')
		if self.socket is not None:
			log.info('diffusiond listening on unix:%s', self.socket)


def _read(path: Path, what: str) -> bytes:
	try:
		return path.read_bytes()
	except OSError as exc:
		raise StartupError(f'cannot read the {what} {path}: {exc.strerror}') from exc


def server_credentials(security: SecuritySettings) -> grpc.ServerCredentials | None:
	if security.tls_cert is None or security.tls_key is None:
		return None
	pair = (_read(security.tls_key, 'TLS key'), _read(security.tls_cert, 'TLS certificate'))
	client_ca = security.tls_client_ca
	roots = _read(client_ca, 'client CA bundle') if client_ca is not None else None
	return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=roots is not None)


def _private_folder(folder: Path) -> None:
	folder.mkdir(mode=0o700, parents=True, exist_ok=True)
	mode = stat.S_IMODE(folder.stat().st_mode)
	if mode & 0o077:
		raise StartupError(
			f'the socket folder {folder} is open to other users (mode {mode:04o}); '
			f'use a private folder (chmod 700 {folder}) or a new path'
		)


def _clear_stale(path: Path) -> None:
	"""Removes a socket nobody listens on; refuses when another daemon answers or the path is no socket."""
	if not path.exists() and not path.is_symlink():
		return
	if path.is_symlink() or not stat.S_ISSOCK(path.lstat().st_mode):
		raise StartupError(f'{path} exists and is not a socket; remove it or choose another socket path')
	probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	try:
		probe.connect(str(path))
	except ConnectionRefusedError:
		path.unlink()  # stale: left by a daemon that did not exit cleanly
		return
	finally:
		probe.close()
	raise StartupError(f'another diffusiond is already listening on {path}; stop it or choose another socket path')


def _check_free(host: str, port: int, address: str) -> None:
	"""A taken port refused here, with the fix, before gRPC's C core logs its own error about it."""
	if port == 0:
		return
	try:
		infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
	except socket.gaierror as exc:
		raise StartupError(f'cannot listen on {address}: {exc.strerror}') from exc
	for family, kind, protocol, _, where in infos[:1]:
		probe = socket.socket(family, kind, protocol)
		try:
			probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: only a listener blocks it
			probe.bind(where)
		except OSError as exc:
			raise StartupError(
				f'cannot listen on {address}: {exc.strerror} (another diffusiond, or another program, has it; '
				'choose another --port)'
			) from exc
		finally:
			probe.close()


def bind(server: grpc.aio.Server, settings: ServerSettings, security: SecuritySettings) -> Endpoints:
	"""Adds every configured port to `server`; raises StartupError with the fix when one cannot be used."""
	endpoints = Endpoints()
	if settings.socket is not None:
		path = settings.socket.expanduser().absolute()
		if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
			raise StartupError(f'the socket path {path} is longer than {_MAX_SOCKET_PATH} bytes; choose a shorter one')
		_private_folder(path.parent)
		_clear_stale(path)
		try:
			server.add_insecure_port(f'unix:{path}')  # file permissions guard it: the folder is private
		except RuntimeError as exc:
			raise StartupError(f'cannot listen on the socket {path}') from exc
		endpoints.socket = path
	if settings.tcp:
		address = f'{settings.host}:{settings.port}'
		_check_free(settings.host, settings.port, address)
		credentials = server_credentials(security)
		with contextlib.suppress(RuntimeError):
			if credentials is None:
				endpoints.port = server.add_insecure_port(address)
			else:
				endpoints.port = server.add_secure_port(address, credentials)
				endpoints.tls = True
		if endpoints.port == 0:
			raise StartupError(f'cannot listen on {address}: the address is in use or not available here')
	if endpoints.port == 0 and endpoints.socket is None:
		raise StartupError('nothing to listen on: enable TCP (server.tcp) or set a socket path (server.socket)')
	return endpoints
