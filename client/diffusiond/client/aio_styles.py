"""StyleService calls of the asyncio client."""

from __future__ import annotations  # the async stub type exists for type checkers only

from collections.abc import Iterable

from diffusiond.client.paging import all_pages_async
from diffusiond.client.update_requests import update_style_request
from diffusiond.v1 import style_service_pb2 as style_pb
from diffusiond.v1 import style_service_pb2_grpc as style_grpc


class AsyncStyleCalls:
	"""Mixed into the client, which sets `_styles` and `timeout`."""

	_styles: style_grpc.StyleServiceAsyncStub
	timeout: float | None

	async def list_styles(self, query: str = '') -> list[style_pb.Style]:
		async def page(token: str) -> tuple[Iterable[style_pb.Style], str]:
			response = await self._styles.ListStyles(
				style_pb.ListStylesRequest(query=query, page_size=500, page_token=token), timeout=self.timeout
			)
			return response.styles, response.next_page_token

		return await all_pages_async(page)

	async def get_style(self, style: str) -> style_pb.Style:
		return (await self._styles.GetStyle(style_pb.GetStyleRequest(style=style), timeout=self.timeout)).style

	async def create_style(
		self,
		name: str,
		prompt: str = '',
		negative_prompt: str = '',
		description: str = '',
		tags: list[str] | None = None,
	) -> style_pb.Style:
		"""`{prompt}` in a template marks where the request's prompt goes; without it the style is appended."""
		style = style_pb.Style(
			name=name, prompt=prompt, negative_prompt=negative_prompt, description=description, tags=tags or []
		)
		return (await self._styles.CreateStyle(style_pb.CreateStyleRequest(style=style), timeout=self.timeout)).style

	async def update_style(
		self,
		style: str,
		*,
		name: str | None = None,
		prompt: str | None = None,
		negative_prompt: str | None = None,
		description: str | None = None,
		tags: list[str] | None = None,
	) -> style_pb.Style:
		"""Changes only the fields given; `style` is the id or name."""
		request = update_style_request(style, name, prompt, negative_prompt, description, tags)
		return (await self._styles.UpdateStyle(request, timeout=self.timeout)).style

	async def delete_style(self, style: str) -> style_pb.Style:
		return (await self._styles.DeleteStyle(style_pb.DeleteStyleRequest(style=style), timeout=self.timeout)).style

	async def import_styles(self, csv: bytes, overwrite: bool = False) -> style_pb.ImportStylesResponse:
		"""An A1111 styles.csv; all rows or none."""
		request = style_pb.ImportStylesRequest(csv=csv, overwrite=overwrite)
		return await self._styles.ImportStyles(request, timeout=self.timeout)

	async def export_styles(self) -> bytes:
		return (await self._styles.ExportStyles(style_pb.ExportStylesRequest(), timeout=self.timeout)).csv
