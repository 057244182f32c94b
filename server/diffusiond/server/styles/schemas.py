"""Styles as the rest of the daemon sees them."""

import re
from datetime import datetime

from pydantic import BaseModel, Field

MAX_NAME = 100
NAME_PATTERN = re.compile(r"^[\w][\w .,'()+&!#@/-]*$")
MAX_TEMPLATE = 4000


class StyleRecord(BaseModel):
	id: str
	name: str
	prompt: str
	negative_prompt: str
	description: str
	tags: list[str]
	builtin: bool
	created_at: datetime
	updated_at: datetime
	last_used_at: datetime | None


class StyleFields(BaseModel):
	"""A new style, or the fields an update sets (None = unchanged)."""

	name: str | None = None
	prompt: str | None = None
	negative_prompt: str | None = None
	description: str | None = None
	tags: list[str] | None = None


class ImportResult(BaseModel):
	created: list[str] = Field(default_factory=list)
	updated: list[str] = Field(default_factory=list)
	skipped: list[str] = Field(default_factory=list)


def name_problem(name: str) -> str | None:
	"""Why `name` cannot name a style, or None."""
	if not name or len(name) > MAX_NAME:
		return f'a style name has 1 to {MAX_NAME} characters, got {len(name)}'
	if name != name.strip() or not NAME_PATTERN.match(name):
		return f"a style name starts with a letter or digit and uses letters, digits, spaces and .,'()+&!#@/- only: {name!r}"
	return None
