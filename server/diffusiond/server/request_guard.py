"""Checks every request message before any handler sees it: bytes that are no message of the method's type,
and enum numbers the API does not define (proto3 enums are open: an unknown number arrives as a plain int).

Both are INVALID_ARGUMENT naming the field, for every field of every request, nested messages, repeated
fields and maps included, so no handler can mistake 9999 for a real choice.
"""

from collections.abc import Callable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from diffusiond.server.errors import FieldViolation, InvalidArgumentError

Deserializer = Callable[[bytes], object]
_SHOWN_NAMES = 12


class Malformed:
	"""What a request that does not decode becomes; the interceptor answers it with INVALID_ARGUMENT."""

	def __init__(self, error: Exception) -> None:
		self.error = error


def tolerant(deserializer: Deserializer | None) -> Deserializer | None:
	"""`deserializer`, but bytes that do not decode give a Malformed instead of an exception gRPC reports as UNKNOWN."""
	if deserializer is None:
		return None

	def decode(data: bytes) -> object:
		try:
			return deserializer(data)
		except (DecodeError, ValueError, RuntimeError) as exc:
			return Malformed(exc)

	return decode


def _enum_violation(field: FieldDescriptor, path: str, number: int) -> FieldViolation | None:
	enum = field.enum_type
	if enum is None or number in enum.values_by_number:
		return None
	names = [value.name for value in enum.values if value.number != 0]
	shown = ', '.join(names[:_SHOWN_NAMES]) + (' …' if len(names) > _SHOWN_NAMES else '')
	return FieldViolation(field=path, description=f'{number} is not a {enum.name} value; use one of {shown}')


def _is_map(field: FieldDescriptor) -> bool:
	entry = field.message_type
	return field.type == FieldDescriptor.TYPE_MESSAGE and entry is not None and entry.GetOptions().map_entry


def enum_violations(message: Message, prefix: str = '') -> list[FieldViolation]:
	"""Every enum field (nested, repeated, map values) holding a number its enum does not define."""
	found: list[FieldViolation] = []
	for field, value in message.ListFields():
		path = f'{prefix}{field.name}'
		entry = field.message_type
		if entry is not None and _is_map(field):
			value_field = entry.fields_by_name['value']
			for key, item in value.items():
				found += _values(value_field, f'{path}[{key!r}]', [item])
		elif field.is_repeated:
			for index, item in enumerate(value):
				found += _values(field, f'{path}[{index}]', [item])
		else:
			found += _values(field, path, [value])
	return found


def _values(field: FieldDescriptor, path: str, values: list[object]) -> list[FieldViolation]:
	found: list[FieldViolation] = []
	for value in values:
		if field.type == FieldDescriptor.TYPE_ENUM and isinstance(value, int):
			violation = _enum_violation(field, path, value)
			if violation is not None:
				found.append(violation)
		elif field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(value, Message):
			found += enum_violations(value, f'{path}.')
	return found


def check_request(request: object) -> None:
	"""Raises InvalidArgumentError for a request that did not decode or holds an unknown enum number."""
	if isinstance(request, Malformed):
		raise InvalidArgumentError(
			[
				FieldViolation(
					field='request',
					description=f'the request is not a valid message of this method ({request.error}); '
					"send it encoded as the method's request type",
				)
			]
		)
	if isinstance(request, Message):
		violations = enum_violations(request)
		if violations:
			raise InvalidArgumentError(violations)
