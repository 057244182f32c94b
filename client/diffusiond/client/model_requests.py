"""ModelService requests from plain Python values; shared by the sync and asyncio clients."""

from diffusiond.v1 import model_service_pb2 as model_pb

BASES = {'sd1': model_pb.MODEL_BASE_SD1, 'sd2': model_pb.MODEL_BASE_SD2, 'sdxl': model_pb.MODEL_BASE_SDXL}
ORDERS = {'name': model_pb.MODEL_ORDER_NAME, 'last-used': model_pb.MODEL_ORDER_LAST_USED}


def list_request(
	base: str = '', loaded_only: bool = False, order: str = 'name', token: str = ''
) -> model_pb.ListModelsRequest:
	"""`base`: '' (all), sd1, sd2 or sdxl; `order`: name or last-used."""
	if base and base not in BASES:
		raise ValueError(f'base must be one of {", ".join(BASES)}, got {base!r}')
	if order not in ORDERS:
		raise ValueError(f'order must be one of {", ".join(ORDERS)}, got {order!r}')
	return model_pb.ListModelsRequest(
		base=BASES.get(base, model_pb.MODEL_BASE_UNSPECIFIED),
		loaded_only=loaded_only,
		order_by=ORDERS[order],
		page_size=500,
		page_token=token,
	)


def download_request(
	url: str, file_name: str = '', sha256: str = '', overwrite: bool = False
) -> model_pb.DownloadModelRequest:
	return model_pb.DownloadModelRequest(url=url, file_name=file_name, sha256=sha256, overwrite=overwrite)


def base_name(value: model_pb.ModelBase.ValueType) -> str:
	return next((name for name, base in BASES.items() if base == value), 'unknown')


def enum_name(prefix: str, name: str) -> str:
	return name.removeprefix(prefix).lower()


def update_request(
	model: str, display_name: str | None, tags: list[str] | None, defaults: model_pb.ModelDefaults | None
) -> model_pb.UpdateModelRequest:
	"""An UpdateModelRequest whose mask names exactly the fields given."""
	request = model_pb.UpdateModelRequest(model=model_pb.Model(id=model))
	if display_name is not None:
		request.model.display_name = display_name
		request.update_mask.paths.append('display_name')
	if tags is not None:
		request.model.tags.extend(tags)
		request.update_mask.paths.append('tags')
	if defaults is not None:
		request.model.defaults.CopyFrom(defaults)
		request.update_mask.paths.append('defaults')
	if not request.update_mask.paths:
		raise ValueError('nothing to update: give a display name, tags or defaults')
	return request
