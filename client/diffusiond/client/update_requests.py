"""Update requests for history records and styles: only the fields given, named in `update_mask`."""

from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import style_service_pb2 as style_pb

Change = str | bool | list[str] | None


def _masked(target: Message, changes: dict[str, Change]) -> field_mask_pb2.FieldMask:
	"""Sets every given (not None) change on `target`; the mask names them. Refuses an empty update."""
	paths = []
	for field, value in changes.items():
		if value is None:
			continue
		if isinstance(value, list):
			getattr(target, field).extend(value)
		else:
			setattr(target, field, value)
		paths.append(field)
	if not paths:
		raise ValueError(f'nothing to update: give {", ".join(changes)}')
	return field_mask_pb2.FieldMask(paths=paths)


def update_generation_request(
	generation_id: str, favourite: bool | None, tags: list[str] | None, note: str | None
) -> history_pb.UpdateGenerationRequest:
	generation = history_pb.Generation(id=generation_id)
	mask = _masked(generation, {'favourite': favourite, 'tags': tags, 'note': note})
	return history_pb.UpdateGenerationRequest(generation=generation, update_mask=mask)


def update_style_request(
	style: str,
	name: str | None,
	prompt: str | None,
	negative_prompt: str | None,
	description: str | None,
	tags: list[str] | None,
) -> style_pb.UpdateStyleRequest:
	changes = style_pb.Style(id=style)
	fields: dict[str, Change] = {
		'name': name,
		'prompt': prompt,
		'negative_prompt': negative_prompt,
		'description': description,
		'tags': tags,
	}
	return style_pb.UpdateStyleRequest(style=changes, update_mask=_masked(changes, fields))
