"""A1111's styles.csv: `name,prompt,negative_prompt` (or the legacy `name,text`), UTF-8 with or without BOM."""

import csv
import io

from pydantic import BaseModel

from diffusiond.server.errors import FieldViolation, InvalidArgumentError
from diffusiond.server.styles.schemas import MAX_TEMPLATE, StyleRecord, name_problem

HEADER = ['name', 'prompt', 'negative_prompt']
LEGACY_HEADER = ['name', 'text']
MAX_CSV_BYTES = 8 * 1024 * 1024


class CsvStyle(BaseModel):
	name: str
	prompt: str
	negative_prompt: str


def _reject(line: int, why: str) -> InvalidArgumentError:
	return InvalidArgumentError([FieldViolation(field='csv', description=f'line {line}: {why}; nothing was imported')])


def parse_styles_csv(data: bytes) -> list[CsvStyle]:
	"""Every style in the file, or InvalidArgumentError naming the first bad line (nothing half read)."""
	if len(data) > MAX_CSV_BYTES:
		raise _reject(1, f'the file is {len(data)} bytes; at most {MAX_CSV_BYTES}')
	try:
		text = data.decode('utf-8-sig')
	except UnicodeDecodeError as exc:
		raise _reject(data[: exc.start].count(b'\n') + 1, 'not UTF-8') from exc
	reader = csv.reader(io.StringIO(text, newline=''), strict=True)
	try:
		header = [column.strip().lower() for column in next(reader, [])]
		if header[:3] != HEADER and header[:2] != LEGACY_HEADER:
			raise _reject(
				1,
				f'the header must be {",".join(HEADER)} (or the legacy {",".join(LEGACY_HEADER)}), got {",".join(header)!r}',
			)
		styles: list[CsvStyle] = []
		seen: set[str] = set()
		for row in reader:
			line = reader.line_num
			if not any(cell.strip() for cell in row):
				continue
			if len(row) > len(header):
				raise _reject(line, f'{len(row)} fields, the header has {len(header)}')
			cells = [*row, '', ''][: len(header)]
			name = cells[0].strip()
			problem = name_problem(name) or (f'the style {name!r} appears twice' if name in seen else None)
			if problem:
				raise _reject(line, problem)
			if any(len(cell) > MAX_TEMPLATE for cell in cells[1:]):
				raise _reject(line, f'a template is longer than {MAX_TEMPLATE} characters')
			seen.add(name)
			negative = cells[2] if header[:3] == HEADER else ''
			styles.append(CsvStyle(name=name, prompt=cells[1], negative_prompt=negative))
	except csv.Error as exc:
		raise _reject(reader.line_num, f'malformed CSV ({exc})') from exc
	return styles


def write_styles_csv(styles: list[StyleRecord]) -> bytes:
	"""The styles as A1111 writes styles.csv (UTF-8 with BOM, every field quoted as needed)."""
	buffer = io.StringIO(newline='')
	writer = csv.writer(buffer, lineterminator='\n')
	writer.writerow(HEADER)
	for style in styles:
		writer.writerow([style.name, style.prompt, style.negative_prompt])
	return buffer.getvalue().encode('utf-8-sig')
