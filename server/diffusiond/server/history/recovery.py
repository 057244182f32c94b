"""Start-up clean-up of the outputs folder after a crash: half-written files and files no record owns.

Images are written before their record is added, so a crash in between leaves files without a record;
a crash while writing leaves a hidden `.name.tmp`. Both are removed at start; recorded files are never
touched.
"""

import asyncio
import logging
import os
import re
from pathlib import Path

from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)
_IMAGE_NAME = re.compile(r'^([0-9a-f-]{36})-\d+\.(png|jpg|webp)$')


def _scan(outputs_dir: Path) -> tuple[list[Path], dict[str, list[Path]]]:
	"""Temporary files, and image files by the job id in their name."""
	temporary: list[Path] = []
	images: dict[str, list[Path]] = {}
	if not outputs_dir.is_dir():
		return temporary, images
	for folder, _, files in os.walk(outputs_dir):
		for name in files:
			path = Path(folder) / name
			if name.startswith('.') and name.endswith('.tmp'):
				temporary.append(path)
			elif match := _IMAGE_NAME.match(name):
				images.setdefault(match.group(1), []).append(path)
	return temporary, images


def _delete(paths: list[Path]) -> None:
	for path in paths:
		path.unlink(missing_ok=True)


async def clean_outputs(repo: HistoryRepository, outputs_dir: Path) -> int:
	"""Removes what a crash left behind; returns how many files."""
	temporary, images = await asyncio.to_thread(_scan, outputs_dir)
	known = await repo.existing(list(images))
	orphans = [path for job_id, paths in images.items() if job_id not in known for path in paths]
	await asyncio.to_thread(_delete, temporary + orphans)
	if temporary or orphans:
		log.warning(
			'removed %d half-written and %d unrecorded files from %s', len(temporary), len(orphans), outputs_dir
		)
	return len(temporary) + len(orphans)
