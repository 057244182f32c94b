"""Start-up recovery after a crash: running jobs marked failed, half-written and unrecorded files removed.

A job's record is added as `running` when it starts; its images are written (temp + rename) before the
record lists them, so a crash in between leaves files no image row names, and a crash while writing leaves
a hidden `.name.tmp`. Both are removed at start; recorded files are never touched.
"""

import asyncio
import logging
import os
import re
from pathlib import Path

from diffusiond.server.history.files import remove_files
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


async def clean_outputs(repo: HistoryRepository, outputs_dir: Path) -> int:
	"""Marks interrupted jobs failed and removes the files a crash left behind; returns how many files."""
	failed = await repo.fail_running('the daemon stopped while this job ran')
	if failed:
		log.warning('%d job(s) were running when the daemon stopped; marked failed', failed)
	temporary, images = await asyncio.to_thread(_scan, outputs_dir)
	known = await repo.recorded_paths(list(images))
	orphans = [
		path for paths in images.values() for path in paths if path.relative_to(outputs_dir).as_posix() not in known
	]
	await asyncio.to_thread(remove_files, temporary + orphans)
	if temporary or orphans:
		log.warning(
			'removed %d half-written and %d unrecorded files from %s', len(temporary), len(orphans), outputs_dir
		)
	return len(temporary) + len(orphans)
