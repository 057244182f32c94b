"""Hypothesis strategies that build any request message of our protos from its descriptor.

Values lean adversarial: boundary and huge numbers, NaN and infinities, unknown enum numbers, empty,
1 MB, unicode and NUL strings, paths that try to leave the data dir, garbage images and bombs.
"""

import io
import zipfile

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.badfiles import png, png_bomb

_NASTY_STRINGS = [
	'',
	'tiny-sd',
	'../../../../etc/passwd',
	'/etc/passwd',
	'..',
	'models/../../escape',
	'a\x00b',
	'\u202e\u0000\uffff😀',
	'C:\\Windows\\system32',
	'~/.ssh/id_rsa',
	'00000000-0000-0000-0000-000000000000',
	'x' * 1_000_000,
	'%s%n{prompt}{{}}',
	'http://127.0.0.1:1/model.safetensors',
	'file:///etc/passwd',
	'ftp://example.invalid/x',
]


def _zip_bomb() -> bytes:
	buffer = io.BytesIO()
	with zipfile.ZipFile(buffer, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
		archive.writestr('manifest.json', b'{' + b' ' * (64 * 1024 * 1024) + b'}')  # 64 MiB that packs to ~64 KiB
	return buffer.getvalue()


NASTY_BYTES = [b'', b'\x00' * 16, b'garbage' * 100, png(), png()[:50], png_bomb(), _zip_bomb(), b'PK\x03\x04junk']
_INT_EDGES = {
	FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
	FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
	FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
	FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
	FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
	FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
	FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
	FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
	FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
	FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
	edges = [value for value in (low, high, -1, 0, 1, 2, 7, 64, 512, 513, 2049, 10**6) if low <= value <= high]
	return st.one_of(st.sampled_from(edges), st.integers(low, high))


def scalar(field: FieldDescriptor) -> st.SearchStrategy[object]:
	kind = field.type
	if kind in _INT_EDGES:
		return _integers(*_INT_EDGES[kind])
	if kind == FieldDescriptor.TYPE_DOUBLE:
		return st.floats(allow_nan=True, allow_infinity=True)
	if kind == FieldDescriptor.TYPE_FLOAT:
		return st.floats(allow_nan=True, allow_infinity=True, width=32)
	if kind == FieldDescriptor.TYPE_BOOL:
		return st.booleans()
	if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
		return st.one_of(st.sampled_from([value.number for value in field.enum_type.values]), st.integers(-3, 200))
	if kind == FieldDescriptor.TYPE_BYTES:
		return st.one_of(st.sampled_from(NASTY_BYTES), st.binary(max_size=256))
	return st.one_of(st.sampled_from(_NASTY_STRINGS), st.text(max_size=40))


def message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
	"""A strategy for messages of `descriptor`: each field set or not, nested messages up to 3 deep."""
	cls = message_factory.GetMessageClass(descriptor)
	fields = [
		field
		for field in descriptor.fields
		if not (field.type == FieldDescriptor.TYPE_MESSAGE and depth >= 3)
		and not (field.message_type is not None and field.message_type.GetOptions().map_entry)
	]

	@st.composite
	def build(draw: st.DrawFn) -> Message:
		instance = cls()
		for field in fields:
			if not draw(st.booleans()):
				continue
			if field.message_type is not None:
				values = draw(st.lists(message(field.message_type, depth + 1), max_size=2 if _repeated(field) else 1))
				for value in values:
					if _repeated(field):
						getattr(instance, field.name).add().CopyFrom(value)
					else:
						getattr(instance, field.name).CopyFrom(value)
			elif _repeated(field):
				getattr(instance, field.name).extend(draw(st.lists(scalar(field), max_size=3)))
			else:
				setattr(instance, field.name, draw(scalar(field)))
		return instance

	return build()


def _repeated(field: FieldDescriptor) -> bool:
	return bool(field.is_repeated)
