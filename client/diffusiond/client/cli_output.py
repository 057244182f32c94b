"""Small output rules shared by the commands: empty listings say so on a terminal."""

import sys
from collections.abc import Sized


def say_empty(found: Sized, text: str, as_json: bool) -> None:
	"""On a terminal, an empty listing says so (scripts and pipes get no output, as for any empty list)."""
	if not len(found) and not as_json and sys.stdout.isatty():
		print(text)


def refreshed(added: int, restored: int, removed: int, changed: int, unchanged: int) -> str:
	"""A rescan's counts; restored ones (brought back by --restore) are counted apart from new files."""
	return f'added {added}, restored {restored}, removed {removed}, changed {changed}, unchanged {unchanged}'
