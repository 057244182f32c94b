"""The style book: validation, lookups, CSV import/export and expansion for Generate."""

import asyncio

from diffusiond.server.errors import AlreadyExistsError, FieldViolation, InvalidArgumentError, StyleNotFoundError
from diffusiond.server.listing import Window, window
from diffusiond.server.store.style_repo import StyleRepository
from diffusiond.server.styles.csvfile import parse_styles_csv, write_styles_csv
from diffusiond.server.styles.schemas import MAX_TEMPLATE, ImportResult, StyleFields, StyleRecord, name_problem

MAX_TAGS = 32


def style_violations(fields: StyleFields, prefix: str = 'style') -> list[FieldViolation]:
	"""Every rule a style's fields break (the RPCs and archive imports use the same)."""
	violations = []
	if fields.name is not None and (problem := name_problem(fields.name)):
		violations.append(FieldViolation(field=f'{prefix}.name', description=problem))
	for field in ('prompt', 'negative_prompt', 'description'):
		value = getattr(fields, field)
		if value is not None and (len(value) > MAX_TEMPLATE or '\x00' in value):
			violations.append(
				FieldViolation(field=f'{prefix}.{field}', description=f'at most {MAX_TEMPLATE} characters, no NUL')
			)
	tags = fields.tags
	if tags is not None and (len(tags) > MAX_TAGS or any(not tag.strip() or len(tag) > 100 for tag in tags)):
		violations.append(FieldViolation(field=f'{prefix}.tags', description=f'at most {MAX_TAGS} non-empty tags'))
	return violations


def check_fields(fields: StyleFields, prefix: str = 'style') -> None:
	violations = style_violations(fields, prefix)
	if violations:
		raise InvalidArgumentError(violations)


class StyleBook:
	def __init__(self, repo: StyleRepository) -> None:
		self.repo = repo

	async def get(self, ref: str) -> StyleRecord:
		if not ref:
			raise InvalidArgumentError([FieldViolation(field='style', description='give a style id or name')])
		record = await self.repo.find(ref)
		if record is None:
			raise StyleNotFoundError(
				f'no style has the id or name {ref!r}; list them with `diffusionctl styles list` (StyleService.ListStyles)',
				metadata={'style': ref},
			)
		return record

	async def browse(self, text: str, offset: int, limit: int) -> Window[StyleRecord]:
		"""The styles whose name, prompts or description contain `text`, by name."""
		return window(await self.repo.all(text), offset, limit)

	async def delete(self, ref: str) -> StyleRecord:
		style = await self.get(ref)
		await self.repo.delete(style.id)
		return style

	async def _check_name_free(self, name: str | None, own_id: str = '') -> None:
		"""Names are unique regardless of case, as lookups ignore case."""
		known = await self.repo.find(name) if name else None
		if known is not None and known.id != own_id:
			raise AlreadyExistsError(
				f'a style named {known.name!r} exists already; pick another name', metadata={'style': known.name}
			)

	async def create(self, fields: StyleFields) -> StyleRecord:
		if not fields.name:
			raise InvalidArgumentError([FieldViolation(field='style.name', description='a style needs a name')])
		check_fields(fields)
		await self._check_name_free(fields.name)
		return await self.repo.create(fields)

	async def update(self, ref: str, fields: StyleFields) -> StyleRecord:
		check_fields(fields)
		style = await self.get(ref)
		await self._check_name_free(fields.name, style.id)
		return await self.repo.update(style.id, fields)

	async def resolve(self, refs: list[str], used: bool = True) -> list[StyleRecord]:
		"""The styles a request names, in order (each once); `used`: they count as used now (a job, not a check)."""
		styles: list[StyleRecord] = []
		for ref in refs:
			style = await self.get(ref)
			if any(known.id == style.id for known in styles):
				raise InvalidArgumentError(
					[FieldViolation(field='styles', description=f'style {style.name!r} is named twice')]
				)
			styles.append(style)
		if used:
			await self.repo.touch([style.id for style in styles])
		return styles

	async def import_csv(self, data: bytes, overwrite: bool) -> ImportResult:
		"""All rows or none: a malformed file is refused before anything is written."""
		rows = await asyncio.to_thread(parse_styles_csv, data)  # up to 8 MiB: not on the event loop
		existing = {style.name.lower(): style for style in await self.repo.all()}
		result = ImportResult()
		created: list[StyleFields] = []
		updated: list[tuple[str, StyleFields]] = []
		for row in rows:
			fields = StyleFields(name=row.name, prompt=row.prompt, negative_prompt=row.negative_prompt)
			known = existing.get(row.name.lower())
			if known is None:
				created.append(fields)
				result.created.append(row.name)
			elif overwrite and (known.prompt, known.negative_prompt) != (row.prompt, row.negative_prompt):
				updated.append((known.id, fields))
				result.updated.append(row.name)
			else:
				result.skipped.append(row.name)
		await self.repo.upsert_many(created, updated)
		return result

	async def export_csv(self) -> tuple[bytes, int]:
		styles = await self.repo.all()
		return await asyncio.to_thread(write_styles_csv, styles), len(styles)
