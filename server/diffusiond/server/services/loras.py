"""LoraService: the LoRA catalog (list, get, refresh, update, delete, batch)."""

import grpc
from google.rpc import code_pb2

from diffusiond.server.catalog.loras import LoraCatalog, LoraQuery
from diffusiond.server.error_status import status_code_for
from diffusiond.server.errors import DiffusiondError, FieldViolation, InvalidArgumentError
from diffusiond.server.recommend.recommender import Recommender
from diffusiond.server.services.lora_convert import base_filter, lora_changes_from_pb, lora_to_pb
from diffusiond.server.services.paging import decode_token, filter_text, next_token, page_size
from diffusiond.server.services.recommend_convert import check_prompts, limit_of, recommendations_to_pb, similar_to_pb
from diffusiond.server.services.refresh import refresh_counts
from diffusiond.server.settings import LimitsSettings
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import lora_service_pb2_grpc as lora_grpc

Context = grpc.aio.ServicerContext[object, object]
MAX_BATCH = 500


def _required(value: str) -> str:
	if not value:
		raise InvalidArgumentError([FieldViolation(field='lora', description='lora is required: an id, name or hash')])
	return value


class LoraService(lora_grpc.LoraServiceServicer):
	def __init__(self, catalog: LoraCatalog, recommender: Recommender, limits: LimitsSettings) -> None:
		self._catalog = catalog
		self._recommender = recommender
		self._limits = limits

	async def ListLoras(self, request: lora_pb.ListLorasRequest, context: Context) -> lora_pb.ListLorasResponse:
		query = LoraQuery(
			base=base_filter(request.base),
			enabled=request.enabled if request.HasField('enabled') else None,
			tag=request.tag,
			text=filter_text(request.query, 'query'),
		)
		offset = decode_token(request.page_token)
		found = await self._catalog.browse(query, offset, page_size(request.page_size))
		return lora_pb.ListLorasResponse(
			loras=[lora_to_pb(record) for record in found.items],
			next_page_token=next_token(found),
			total_size=found.total,
		)

	async def GetLora(self, request: lora_pb.GetLoraRequest, context: Context) -> lora_pb.GetLoraResponse:
		return lora_pb.GetLoraResponse(lora=lora_to_pb(await self._catalog.get(_required(request.lora))))

	async def RefreshLoras(
		self, request: lora_pb.RefreshLorasRequest, context: Context
	) -> lora_pb.RefreshLorasResponse:
		result = await self._catalog.refresh(restore=request.restore_unregistered)
		return lora_pb.RefreshLorasResponse(**refresh_counts(result))

	async def UpdateLora(self, request: lora_pb.UpdateLoraRequest, context: Context) -> lora_pb.UpdateLoraResponse:
		changes = lora_changes_from_pb(request)
		record = await self._catalog.update(_required(request.lora.id or request.lora.name), changes)
		return lora_pb.UpdateLoraResponse(lora=lora_to_pb(record))

	async def DeleteLora(self, request: lora_pb.DeleteLoraRequest, context: Context) -> lora_pb.DeleteLoraResponse:
		record = await self._catalog.get(_required(request.lora))
		await self._catalog.delete(record, request.delete_files)
		return lora_pb.DeleteLoraResponse(lora=lora_to_pb(record))

	async def BatchUpdateLoras(
		self, request: lora_pb.BatchUpdateLorasRequest, context: Context
	) -> lora_pb.BatchUpdateLorasResponse:
		if request.action == lora_pb.BATCH_ACTION_UNSPECIFIED or not 1 <= len(request.loras) <= MAX_BATCH:
			raise InvalidArgumentError(
				[FieldViolation(field='action', description=f'give an action and 1..{MAX_BATCH} LoRAs')]
			)
		results = []
		for ref in request.loras:
			result = lora_pb.BatchResult(lora=ref, code=code_pb2.OK)
			try:
				if request.action == lora_pb.BATCH_ACTION_DELETE:
					record = await self._catalog.get(_required(ref), rescan=False)
					result.id = record.id
					await self._catalog.delete(record, request.delete_files)
				else:
					enable = request.action == lora_pb.BATCH_ACTION_ENABLE
					result.id = (await self._catalog.set_enabled(_required(ref), enable)).id
			except DiffusiondError as error:
				result.code = getattr(code_pb2, status_code_for(error).name)
				result.reason, result.message = error.reason, error.message
			results.append(result)
		return lora_pb.BatchUpdateLorasResponse(results=results)

	async def RecommendLoras(
		self, request: lora_pb.RecommendLorasRequest, context: Context
	) -> lora_pb.RecommendLorasResponse:
		check_prompts(request, self._limits)
		limit = limit_of(request.limit)
		found = await self._recommender.recommend(request.prompt, request.negative_prompt, request.model, limit)
		return recommendations_to_pb(found)

	async def SimilarLoras(
		self, request: lora_pb.SimilarLorasRequest, context: Context
	) -> lora_pb.SimilarLorasResponse:
		limit = limit_of(request.limit)
		ref = _required(request.lora)
		found = await self._recommender.similar(ref, limit)
		return similar_to_pb(found, self._recommender.version)
