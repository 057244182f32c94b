"""StyleService: prompt style presets, and A1111 styles.csv import/export."""

import grpc

from diffusiond.server.services.paging import decode_token, filter_text, next_token, page_size
from diffusiond.server.services.style_convert import fields_from_pb, style_to_pb
from diffusiond.server.styles.book import StyleBook
from diffusiond.v1 import style_service_pb2 as style_pb
from diffusiond.v1 import style_service_pb2_grpc as style_grpc

Context = grpc.aio.ServicerContext[object, object]


class StyleService(style_grpc.StyleServiceServicer):
	def __init__(self, book: StyleBook) -> None:
		self._book = book

	async def ListStyles(self, request: style_pb.ListStylesRequest, context: Context) -> style_pb.ListStylesResponse:
		offset = decode_token(request.page_token)
		found = await self._book.browse(filter_text(request.query, 'query'), offset, page_size(request.page_size))
		return style_pb.ListStylesResponse(
			styles=[style_to_pb(style) for style in found.items],
			next_page_token=next_token(found),
			total_size=found.total,
		)

	async def GetStyle(self, request: style_pb.GetStyleRequest, context: Context) -> style_pb.GetStyleResponse:
		return style_pb.GetStyleResponse(style=style_to_pb(await self._book.get(request.style)))

	async def CreateStyle(self, request: style_pb.CreateStyleRequest, context: Context) -> style_pb.CreateStyleResponse:
		style = await self._book.create(fields_from_pb(request.style))
		return style_pb.CreateStyleResponse(style=style_to_pb(style))

	async def UpdateStyle(self, request: style_pb.UpdateStyleRequest, context: Context) -> style_pb.UpdateStyleResponse:
		fields = fields_from_pb(request.style, list(request.update_mask.paths))
		style = await self._book.update(request.style.id or request.style.name, fields)
		return style_pb.UpdateStyleResponse(style=style_to_pb(style))

	async def DeleteStyle(self, request: style_pb.DeleteStyleRequest, context: Context) -> style_pb.DeleteStyleResponse:
		style = await self._book.delete(request.style)
		return style_pb.DeleteStyleResponse(style=style_to_pb(style))

	async def ImportStyles(
		self, request: style_pb.ImportStylesRequest, context: Context
	) -> style_pb.ImportStylesResponse:
		result = await self._book.import_csv(request.csv, request.overwrite)
		return style_pb.ImportStylesResponse(created=result.created, updated=result.updated, skipped=result.skipped)

	async def ExportStyles(
		self, request: style_pb.ExportStylesRequest, context: Context
	) -> style_pb.ExportStylesResponse:
		data, count = await self._book.export_csv()
		return style_pb.ExportStylesResponse(csv=data, count=count)
