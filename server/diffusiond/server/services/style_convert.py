"""Conversion between styles and StyleService messages."""

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.services.model_convert import timestamp
from diffusiond.server.styles.schemas import StyleFields, StyleRecord
from diffusiond.v1 import style_service_pb2 as style_pb

UPDATABLE = ('name', 'prompt', 'negative_prompt', 'description', 'tags')


def style_to_pb(style: StyleRecord) -> style_pb.Style:
	message = style_pb.Style(
		id=style.id,
		name=style.name,
		prompt=style.prompt,
		negative_prompt=style.negative_prompt,
		description=style.description,
		tags=style.tags,
		builtin=style.builtin,
		create_time=timestamp(style.created_at),
		update_time=timestamp(style.updated_at),
	)
	if style.last_used_at is not None:
		message.last_used_time.CopyFrom(timestamp(style.last_used_at))
	return message


def fields_from_pb(style: style_pb.Style, paths: list[str] | None = None) -> StyleFields:
	"""The fields named in `paths` (all when None or empty); unknown paths are INVALID_ARGUMENT."""
	chosen = paths or list(UPDATABLE)
	unknown = [path for path in chosen if path not in UPDATABLE]
	if unknown:
		raise InvalidArgumentError(
			[
				FieldViolation(
					field='update_mask',
					description=f'{unknown[0]!r} cannot be updated; allowed: {", ".join(UPDATABLE)}',
				)
			]
		)
	tags = [tag.strip() for tag in style.tags]
	return StyleFields(
		name=style.name.strip() if 'name' in chosen else None,
		prompt=style.prompt if 'prompt' in chosen else None,
		negative_prompt=style.negative_prompt if 'negative_prompt' in chosen else None,
		description=style.description if 'description' in chosen else None,
		tags=list(dict.fromkeys(tags)) if 'tags' in chosen else None,
	)
