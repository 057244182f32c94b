"""A TCP proxy that can stop delivering the server's bytes: a client that stops reading, at the one seam."""

import asyncio
import contextlib


class StallingProxy:
	"""Forwards 127.0.0.1:<port> to `upstream`; after `stall()` it no longer reads what the server sends."""

	def __init__(self, upstream_port: int) -> None:
		self._upstream_port = upstream_port
		self._flowing = asyncio.Event()
		self._flowing.set()
		self._server: asyncio.Server | None = None
		self._tasks: set[asyncio.Task[None]] = set()
		self.port = 0

	async def __aenter__(self) -> 'StallingProxy':
		self._server = await asyncio.start_server(self._accept, '127.0.0.1', 0)
		self.port = self._server.sockets[0].getsockname()[1]
		return self

	async def __aexit__(self, *exc_info: object) -> None:
		for task in self._tasks:
			task.cancel()
		if self._server is not None:
			self._server.close()

	def stall(self) -> None:
		self._flowing.clear()

	def resume(self) -> None:
		self._flowing.set()

	async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
		up_reader, up_writer = await asyncio.open_connection('127.0.0.1', self._upstream_port)
		for task in (self._pump(reader, up_writer, False), self._pump(up_reader, writer, True)):
			self._tasks.add(asyncio.create_task(task))

	async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gated: bool) -> None:
		with contextlib.suppress(ConnectionError, asyncio.CancelledError):
			while True:
				if gated:
					await self._flowing.wait()
				data = await reader.read(16384)
				if not data:
					break
				writer.write(data)
				await writer.drain()
		writer.close()
