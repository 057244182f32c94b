"""Update requests for history records and styles: only the fields given, named in `update_mask`."""

from google.protobuf import field_mask_pb2

from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import style_service_pb2 as style_pb


def update_generation_request(
	generation_id: str, favourite: bool | None, tags: list[str] | None, note: str | None
) -> history_pb.UpdateGenerationRequest:
	generation = history_pb.Generation(id=generation_id)
	paths = []
	if favourite is not None:
		generation.favourite = favourite
		paths.append('favourite')
	if tags is not None:
		generation.tags.extend(tags)
		paths.append('tags')
	if note is not None:
		generation.note = note
		paths.append('note')
	if not paths:
		raise ValueError('nothing to update: give favourite, tags or note')
	mask = field_mask_pb2.FieldMask(paths=paths)
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
	paths = []
	for field, value in (('name', name), ('prompt', prompt), ('negative_prompt', negative_prompt)):
		if value is not None:
			setattr(changes, field, value)
			paths.append(field)
	if description is not None:
		changes.description = description
		paths.append('description')
	if tags is not None:
		changes.tags.extend(tags)
		paths.append('tags')
	if not paths:
		raise ValueError('nothing to update: give name, prompt, negative_prompt, description or tags')
	return style_pb.UpdateStyleRequest(style=changes, update_mask=field_mask_pb2.FieldMask(paths=paths))
