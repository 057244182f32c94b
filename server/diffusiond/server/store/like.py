"""SQL LIKE patterns from user text: `%`, `_` and the escape character match themselves."""

LIKE_ESCAPE = '\\'


def contains(text: str) -> str:
	"""A LIKE pattern (use with `escape=LIKE_ESCAPE`) matching any value that contains `text` literally."""
	escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace('%', f'{LIKE_ESCAPE}%').replace('_', f'{LIKE_ESCAPE}_')
	return f'%{escaped}%'
