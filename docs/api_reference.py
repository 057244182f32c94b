"""Writes docs/API.md from protos/: every service, RPC, message and enum with its proto comment, plus the
error table from the server's error classes. `make docs` runs it; a test fails when API.md is stale or a
service or RPC has no comment. The hand-written part (conventions, streaming semantics, limits) is
docs/api_intro.md.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

from diffusiond.server import errors
from diffusiond.server.error_status import status_code_for

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / 'protos'
OUTPUT = ROOT / 'docs' / 'API.md'
_PACKAGE = '.diffusiond.v1.'
_FieldType = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
	value: name.removeprefix('TYPE_').lower()
	for name, value in _FieldType.Type.items()
	if name not in ('TYPE_MESSAGE', 'TYPE_ENUM', 'TYPE_GROUP')
}
HEADER = (ROOT / 'docs' / 'api_intro.md').read_text()


def descriptors() -> list[descriptor_pb2.FileDescriptorProto]:
	files = sorted(str(path.relative_to(PROTOS)) for path in (PROTOS / 'diffusiond' / 'v1').glob('*.proto'))
	with tempfile.TemporaryDirectory() as scratch:
		out = Path(scratch) / 'api.pb'
		command = [sys.executable, '-m', 'grpc_tools.protoc', f'-I{PROTOS}', '--include_source_info']
		subprocess.run([*command, f'--descriptor_set_out={out}', *files], check=True)
		return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


class Comments:
	def __init__(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
		self._at = {tuple(loc.path): loc.leading_comments.strip() for loc in proto.source_code_info.location}

	def __call__(self, *path: int) -> str:
		return self._at.get(path, '')


def _block(text: str) -> str:
	"""A comment as Markdown: one leading space dropped per line, line breaks kept (hard breaks)."""
	lines = [line[1:] if line.startswith(' ') else line for line in text.splitlines()]
	return '  \n'.join(line.rstrip() for line in lines)


def _cell(text: str) -> str:
	return ' '.join(text.split()).replace('|', '\\|')


def _type(field: descriptor_pb2.FieldDescriptorProto, maps: dict[str, str]) -> str:
	name = field.type_name.removeprefix(_PACKAGE).removeprefix('.') if field.type_name else _SCALARS[field.type]
	if field.type_name in maps:
		return maps[field.type_name]
	if field.label == _FieldType.LABEL_REPEATED:
		return f'repeated {name}'
	return f'optional {name}' if field.proto3_optional else name


def _fields(
	message: descriptor_pb2.DescriptorProto, comment: Comments, path: tuple[int, ...], maps: dict[str, str]
) -> list[str]:
	if not message.field:
		return ['(no fields)', '']
	lines = ['| field | type | meaning |', '|---|---|---|']
	for index, field in enumerate(message.field):
		text = _cell(comment(*path, 2, index))
		lines.append(f'| `{field.name}` = {field.number} | `{_type(field, maps)}` | {text} |')
	return [*lines, '']


def _messages(proto: descriptor_pb2.FileDescriptorProto, maps: dict[str, str]) -> list[str]:
	comment = Comments(proto)
	lines: list[str] = []

	def visit(message: descriptor_pb2.DescriptorProto, path: tuple[int, ...], prefix: str) -> None:
		if message.options.map_entry:
			return
		lines.extend([f'### {prefix}{message.name}', '', _block(comment(*path)), ''])
		lines.extend(_fields(message, comment, path, maps))
		for index, nested in enumerate(message.nested_type):
			visit(nested, (*path, 3, index), f'{prefix}{message.name}.')

	for index, message in enumerate(proto.message_type):
		visit(message, (4, index), '')
	for index, enum in enumerate(proto.enum_type):
		lines.extend([f'### enum {enum.name}', '', _block(comment(5, index)), ''])
		lines.extend(['| value | number | meaning |', '|---|---|---|'])
		for number, value in enumerate(enum.value):
			lines.append(f'| `{value.name}` | {value.number} | {_cell(comment(5, index, 2, number))} |')
		lines.append('')
	return lines


def _map_types(files: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
	found: dict[str, str] = {}
	for proto in files:
		for message in proto.message_type:
			for nested in message.nested_type:
				if nested.options.map_entry:
					key, value = nested.field
					name = f'.{proto.package}.{message.name}.{nested.name}'
					found[name] = (
						f'map<{_SCALARS.get(key.type, key.type_name)}, {_SCALARS.get(value.type, value.type_name)}>'
					)
	return found


def _error_table() -> list[str]:
	rows: list[tuple[str, str]] = []

	def visit(cls: type[errors.DiffusiondError]) -> None:
		if cls is not errors.DiffusiondError:
			rows.append((status_code_for(cls.__new__(cls)).name, cls.reason))
		for sub in cls.__subclasses__():
			visit(sub)

	visit(errors.DiffusiondError)
	by_code: dict[str, list[str]] = {}
	for code, reason in rows:
		by_code.setdefault(code, []).append(f'`{reason}`')
	lines = ['| code | ErrorInfo reasons |', '|---|---|']
	lines += [f'| `{code}` | {", ".join(reasons)} |' for code, reasons in sorted(by_code.items())]
	return [*lines, '']


def render() -> str:
	files = descriptors()
	maps = _map_types(files)
	lines = [HEADER.rstrip(), '', '## Errors', '', *_error_table(), '## Services', '']
	for proto in files:
		comment = Comments(proto)
		for s_index, service in enumerate(proto.service):
			lines.extend([f'### {service.name}', '', f'`{proto.name}`', '', _block(comment(6, s_index)), ''])
			for m_index, method in enumerate(service.method):
				request = ('stream ' if method.client_streaming else '') + method.input_type.removeprefix(_PACKAGE)
				reply = ('stream ' if method.server_streaming else '') + method.output_type.removeprefix(_PACKAGE)
				lines.extend(
					[f'#### {service.name}.{method.name}', '', f'`rpc {method.name}({request}) returns ({reply})`']
				)
				lines.extend(['', _block(comment(6, s_index, 2, m_index)), ''])
	lines.extend(['## Messages and enums', ''])
	for proto in files:
		lines.extend(_messages(proto, maps))
	return '\n'.join(lines).rstrip() + '\n'


def undocumented() -> list[str]:
	"""Services and RPCs without a comment."""
	missing: list[str] = []
	for proto in descriptors():
		comment = Comments(proto)
		for s_index, service in enumerate(proto.service):
			if not comment(6, s_index):
				missing.append(service.name)
			missing += [
				f'{service.name}.{m.name}' for i, m in enumerate(service.method) if not comment(6, s_index, 2, i)
			]
	return missing


if __name__ == '__main__':
	OUTPUT.write_text(render())
	print(f'wrote {OUTPUT.relative_to(ROOT)}')
