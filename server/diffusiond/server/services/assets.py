"""AssetService: the embeddings, VAE, ControlNet and upscaler catalogs (list, refresh)."""

import grpc

from diffusiond.server.catalog.asset_schemas import (
	CONTROLNET_HASH_LENGTH,
	TI_HASH_LENGTH,
	VAE_HASH_LENGTH,
	AssetRecord,
	UpscalerRecord,
)
from diffusiond.server.catalog.schemas import ModelBase
from diffusiond.server.catalog.upscalers import UPSCALER_HASH_LENGTH
from diffusiond.server.jobs.assets import JobAssets
from diffusiond.server.services.model_convert import BASES, STATUSES, base_from_pb
from diffusiond.server.services.refresh import refresh_counts
from diffusiond.server.tasks.upscale import BUILTIN_UPSCALERS
from diffusiond.v1 import asset_service_pb2 as asset_pb
from diffusiond.v1 import asset_service_pb2_grpc as asset_grpc
from diffusiond.v1 import model_service_pb2 as model_pb

Context = grpc.aio.ServicerContext[object, object]


def asset_to_pb(record: AssetRecord, hash_length: int) -> asset_pb.Asset:
	probe = record.probe
	return asset_pb.Asset(
		id=record.id,
		name=record.name,
		path=record.path,
		base=BASES.get(probe.base, model_pb.MODEL_BASE_UNSPECIFIED),
		status=STATUSES[probe.status],
		problem=probe.problem,
		size_bytes=record.size_bytes,
		sha256=record.sha256 or '',
		short_hash=record.short_hash(hash_length),
		layout=probe.layout.value,
		vectors=probe.vectors,
		width=probe.width,
		pickle=probe.pickle,
	)


def upscaler_to_pb(record: UpscalerRecord) -> asset_pb.Asset:
	found = asset_to_pb(record, UPSCALER_HASH_LENGTH)
	found.layout, found.architecture, found.scale = record.probe.purpose, record.probe.architecture, record.probe.scale
	return found


def _of_base(records: list[AssetRecord], base: ModelBase | None) -> list[AssetRecord]:
	return [record for record in records if base is None or record.probe.base is base]


class AssetService(asset_grpc.AssetServiceServicer):
	def __init__(self, assets: JobAssets) -> None:
		self._embeddings = assets.embeddings
		self._vaes = assets.vaes
		self._controlnets = assets.controlnets
		self._upscalers = assets.upscalers

	async def ListEmbeddings(
		self, request: asset_pb.ListEmbeddingsRequest, context: Context
	) -> asset_pb.ListEmbeddingsResponse:
		found = _of_base(await self._embeddings.entries(), base_from_pb(request.base))
		return asset_pb.ListEmbeddingsResponse(embeddings=[asset_to_pb(record, TI_HASH_LENGTH) for record in found])

	async def ListVaes(self, request: asset_pb.ListVaesRequest, context: Context) -> asset_pb.ListVaesResponse:
		found = _of_base(await self._vaes.entries(), base_from_pb(request.base))
		return asset_pb.ListVaesResponse(vaes=[asset_to_pb(record, VAE_HASH_LENGTH) for record in found])

	async def RefreshEmbeddings(
		self, request: asset_pb.RefreshEmbeddingsRequest, context: Context
	) -> asset_pb.RefreshEmbeddingsResponse:
		result = await self._embeddings.refresh(restore=request.restore_unregistered)
		return asset_pb.RefreshEmbeddingsResponse(**refresh_counts(result))

	async def RefreshVaes(self, request: asset_pb.RefreshVaesRequest, context: Context) -> asset_pb.RefreshVaesResponse:
		result = await self._vaes.refresh(restore=request.restore_unregistered)
		return asset_pb.RefreshVaesResponse(**refresh_counts(result))

	async def ListControlNets(
		self, request: asset_pb.ListControlNetsRequest, context: Context
	) -> asset_pb.ListControlNetsResponse:
		found = _of_base(await self._controlnets.entries(), base_from_pb(request.base))
		return asset_pb.ListControlNetsResponse(
			controlnets=[asset_to_pb(record, CONTROLNET_HASH_LENGTH) for record in found]
		)

	async def RefreshControlNets(
		self, request: asset_pb.RefreshControlNetsRequest, context: Context
	) -> asset_pb.RefreshControlNetsResponse:
		result = await self._controlnets.refresh(restore=request.restore_unregistered)
		return asset_pb.RefreshControlNetsResponse(**refresh_counts(result))

	async def ListUpscalers(
		self, request: asset_pb.ListUpscalersRequest, context: Context
	) -> asset_pb.ListUpscalersResponse:
		found = await self._upscalers.entries()
		return asset_pb.ListUpscalersResponse(
			upscalers=[upscaler_to_pb(record) for record in found], builtin=list(BUILTIN_UPSCALERS)
		)

	async def RefreshUpscalers(
		self, request: asset_pb.RefreshUpscalersRequest, context: Context
	) -> asset_pb.RefreshUpscalersResponse:
		result = await self._upscalers.refresh(restore=request.restore_unregistered)
		return asset_pb.RefreshUpscalersResponse(**refresh_counts(result))
