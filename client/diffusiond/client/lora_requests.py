"""LoraService requests from plain Python values; shared by the sync and asyncio clients."""

from diffusiond.client.model_requests import BASES
from diffusiond.v1 import lora_service_pb2 as lora_pb
from diffusiond.v1 import model_service_pb2 as model_pb

ACTIONS = {
	'enable': lora_pb.BATCH_ACTION_ENABLE,
	'disable': lora_pb.BATCH_ACTION_DISABLE,
	'delete': lora_pb.BATCH_ACTION_DELETE,
}


def list_loras_request(base: str, enabled: bool | None, tag: str, query: str, token: str) -> lora_pb.ListLorasRequest:
	if base and base not in BASES:
		raise ValueError(f'base must be one of {", ".join(BASES)}, got {base!r}')
	request = lora_pb.ListLorasRequest(
		base=BASES.get(base, model_pb.MODEL_BASE_UNSPECIFIED), tag=tag, query=query, page_size=500, page_token=token
	)
	if enabled is not None:
		request.enabled = enabled
	return request


def update_lora_request(
	lora: str,
	display_name: str | None,
	tags: list[str] | None,
	trigger_words: list[str] | None,
	default_weight: float | None,
	note: str | None = None,
) -> lora_pb.UpdateLoraRequest:
	"""The mask names exactly the fields given; trigger_words=[] restores the suggested ones."""
	request = lora_pb.UpdateLoraRequest(lora=lora_pb.Lora(id=lora))
	if display_name is not None:
		request.lora.display_name = display_name
		request.update_mask.paths.append('display_name')
	if tags is not None:
		request.lora.tags.extend(tags)
		request.update_mask.paths.append('tags')
	if trigger_words is not None:
		request.lora.trigger_words.extend(trigger_words)
		request.update_mask.paths.append('trigger_words')
	if default_weight is not None:
		request.lora.default_weight = default_weight
		request.update_mask.paths.append('default_weight')
	if note is not None:
		request.lora.note = note
		request.update_mask.paths.append('note')
	if not request.update_mask.paths:
		raise ValueError('nothing to update: give a display name, tags, trigger words, a default weight or a note')
	return request


def batch_request(loras: list[str], action: str, delete_files: bool = False) -> lora_pb.BatchUpdateLorasRequest:
	if action not in ACTIONS:
		raise ValueError(f'action must be one of {", ".join(ACTIONS)}, got {action!r}')
	return lora_pb.BatchUpdateLorasRequest(loras=loras, action=ACTIONS[action], delete_files=delete_files)
