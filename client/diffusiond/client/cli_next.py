"""`loras suggest --apply`: LoRA tags kept for the next `diffusionctl generate` on this machine, which adds them to
its prompt once (in $XDG_STATE_HOME/diffusionctl, else ~/.local/state/diffusionctl)."""

import json
import os
from pathlib import Path


def _file() -> Path:
	state = os.environ.get('XDG_STATE_HOME') or str(Path.home() / '.local' / 'state')
	return Path(state) / 'diffusionctl' / 'next-loras.json'


def keep_for_next(tags: list[str]) -> Path:
	"""Keeps `tags` (`<lora:NAME:WEIGHT>`) for the next generate; where they are kept."""
	target = _file()
	target.parent.mkdir(parents=True, exist_ok=True)
	target.write_text(json.dumps(tags))
	return target


def take_next() -> list[str]:
	"""The tags kept for this generate (then forgotten); none when there are none, or the file is unreadable."""
	target = _file()
	try:
		found = json.loads(target.read_text())
	except (OSError, ValueError):
		return []
	target.unlink(missing_ok=True)
	return [tag for tag in found if isinstance(tag, str)] if isinstance(found, list) else []
