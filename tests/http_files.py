"""A local HTTP file server for download tests: Range + If-Range, ETags, tokens, error pages, failures."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import BaseModel, ConfigDict, Field


class Route(BaseModel):
	model_config = ConfigDict(arbitrary_types_allowed=True)

	body: bytes
	content_type: str = 'application/octet-stream'
	status: int = 200
	etag: str = '"v1"'
	token: str = ''  # required bearer token
	cut_after: int = 0  # first response stops after this many bytes (an interrupted transfer)
	chunk_delay_s: float = 0.0  # per 4 KiB chunk
	location: str = ''  # redirect target
	disposition: str = ''


class Files(BaseModel):
	"""What the server serves and what it was asked."""

	model_config = ConfigDict(arbitrary_types_allowed=True)

	routes: dict[str, Route] = Field(default_factory=dict)
	requests: list[dict[str, str]] = Field(default_factory=list)
	cut_done: set[str] = Field(default_factory=set)


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
	class Handler(BaseHTTPRequestHandler):
		def log_message(self, format: str, *args: object) -> None:
			return

		def do_GET(self) -> None:
			files.requests.append({'path': self.path, **{k.lower(): v for k, v in self.headers.items()}})
			route = files.routes.get(self.path)
			if route is None:
				self._simple(404, b'not found')
				return
			if route.location:
				self.send_response(302)
				self.send_header('Location', route.location)
				self.end_headers()
				return
			if route.token and self.headers.get('Authorization') != f'Bearer {route.token}':
				self._simple(401, b'{"error": "unauthorized"}', 'application/json')
				return
			self._serve(route)

		def _simple(self, status: int, body: bytes, kind: str = 'text/plain') -> None:
			self.send_response(status)
			self.send_header('Content-Type', kind)
			self.send_header('Content-Length', str(len(body)))
			self.end_headers()
			self.wfile.write(body)

		def _serve(self, route: Route) -> None:
			start = 0
			wanted = self.headers.get('Range', '')
			if wanted.startswith('bytes=') and self.headers.get('If-Range', route.etag) == route.etag:
				start = int(wanted.removeprefix('bytes=').split('-')[0])
				if start >= len(route.body):
					self._simple(416, b'')
					return
			body = route.body[start:]
			self.send_response(206 if start else route.status)
			self.send_header('Content-Type', route.content_type)
			self.send_header('Content-Length', str(len(body)))
			self.send_header('ETag', route.etag)
			if start:
				self.send_header('Content-Range', f'bytes {start}-{len(route.body) - 1}/{len(route.body)}')
			if route.disposition:
				self.send_header('Content-Disposition', route.disposition)
			self.end_headers()
			if route.cut_after and self.path not in files.cut_done:
				files.cut_done.add(self.path)
				body = body[: route.cut_after]
			for offset in range(0, len(body), 4096):
				time.sleep(route.chunk_delay_s)
				try:
					self.wfile.write(body[offset : offset + 4096])
				except (BrokenPipeError, ConnectionResetError):
					return
			self.close_connection = True

	return Handler


class FileServer:
	def __init__(self) -> None:
		self.files = Files()
		self._server = ThreadingHTTPServer(('127.0.0.1', 0), _handler(self.files))
		self._server.daemon_threads = True
		self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

	@property
	def base(self) -> str:
		return f'http://127.0.0.1:{self._server.server_address[1]}'

	def url(self, path: str, route: Route) -> str:
		self.files.routes[path] = route
		return self.base + path

	def __enter__(self) -> 'FileServer':
		self._thread.start()
		return self

	def __exit__(self, *exc: object) -> None:
		self._server.shutdown()
		self._server.server_close()
