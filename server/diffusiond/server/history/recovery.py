"""Start-up recovery: interrupted jobs marked failed, our own half-writes removed, finished images kept.

Only files that are provably our own half-writes are ever removed: hidden `.name.tmp` files in the outputs
folder (a crash while writing an image) and `.archive-*.zip` uploads in the scratch folder (a crash during an
import). The data folder is locked by this daemon (lock.py), so nothing else is writing them.

A finished image that no record lists is never deleted. Where its job has a record (a crash between renaming
the files into place and recording them), the files are attached to it; where the history has no record at
all (a new, moved or replaced database), the record is rebuilt from the image's own metadata. What cannot be
read is left where it is and reported.
"""

import asyncio
import logging
import os
import re
from pathlib import Path

from pydantic import BaseModel, Field

from diffusiond.server.history.files import remove_files
from diffusiond.server.history.layout import IMAGE_NAME
from diffusiond.server.history.rebuild import FoundImage, read_image, rebuilt_record
from diffusiond.server.store.history_repo import HistoryRepository

log = logging.getLogger(__name__)
SCRATCH_NAME = re.compile(r'^\.archive-[^/]*\.zip$')


class RecoveryReport(BaseModel):
	failed_jobs: int = 0  # records that were running when the daemon stopped
	temporary_removed: int = 0  # hidden .tmp files in outputs/ and .archive-*.zip uploads in tmp/
	attached: int = 0  # finished images added to their job's existing record
	rebuilt_records: int = 0  # records rebuilt from image metadata
	rebuilt_images: int = 0
	left: list[str] = Field(default_factory=list)  # unrecorded files that could not be read: kept, reported


class _Scan(BaseModel):
	temporary: list[Path] = Field(default_factory=list)
	images: dict[str, list[tuple[str, int]]] = Field(default_factory=dict)  # job id → (relative path, index)


def _scan(outputs_dir: Path | None, scratch_dir: Path) -> _Scan:
	found = _Scan()
	if outputs_dir is not None and outputs_dir.is_dir():
		for folder, _, files in os.walk(outputs_dir):
			for name in files:
				path = Path(folder) / name
				if path.is_symlink():
					continue  # never ours: left alone, never followed
				if name.startswith('.') and name.endswith('.tmp'):
					found.temporary.append(path)
				elif match := IMAGE_NAME.match(name):
					relative = path.relative_to(outputs_dir).as_posix()
					found.images.setdefault(match.group(1), []).append((relative, int(match.group(2))))
	if scratch_dir.is_dir():
		found.temporary += [path for path in scratch_dir.iterdir() if SCRATCH_NAME.match(path.name) and path.is_file()]
	return found


def _read(outputs_dir: Path, files: list[tuple[str, int]]) -> tuple[list[FoundImage], list[str]]:
	readable, unreadable = [], []
	for relative, index in files:
		image = read_image(outputs_dir, relative, index)
		if image is None:
			unreadable.append(relative)
		else:
			readable.append(image)
	return readable, unreadable


async def recover(repo: HistoryRepository, node: str, outputs_dir: Path | None, scratch_dir: Path) -> RecoveryReport:
	"""Runs before any job can write: the report says what was done (and is logged). Only this node's running
	records are failed (other daemons sharing the database may be running theirs); the files are this data
	folder's own. `outputs_dir` None: the images are in a bucket (history/s3_outputs.py), where a PUT leaves no
	half-write and the bucket is every node's, so it is not scanned; an image stored just before a crash and not
	yet recorded is made again when its job resumes (the same id, seed and object name)."""
	report = RecoveryReport(failed_jobs=await repo.fail_running(node, 'the daemon stopped while this job ran'))
	scan = await asyncio.to_thread(_scan, outputs_dir, scratch_dir)
	await asyncio.to_thread(remove_files, scan.temporary)
	report.temporary_removed = len(scan.temporary)
	known = await repo.recorded_paths([relative for files in scan.images.values() for relative, _ in files])
	unrecorded = {
		job_id: [(relative, index) for relative, index in files if relative not in known]
		for job_id, files in scan.images.items()
	}
	unrecorded = {job_id: files for job_id, files in unrecorded.items() if files}
	records = await repo.existing(list(unrecorded))
	for job_id, files in unrecorded.items():
		assert outputs_dir is not None, 'only a folder is scanned for images'
		images, unreadable = await asyncio.to_thread(_read, outputs_dir, files)
		report.left += unreadable
		if job_id in records:
			attached = await repo.attach_images(job_id, [image.stored for image in images])
			report.attached += len(attached)
			report.left += [image.relative for image in images if image.relative not in attached]
			continue
		record = rebuilt_record(job_id, images, node)
		if record is None:
			report.left += [image.relative for image in images]
			continue
		await repo.add(record)
		report.rebuilt_records += 1
		report.rebuilt_images += len(record.images)
	_log(report, outputs_dir)
	return report


def _log(report: RecoveryReport, outputs_dir: Path | None) -> None:
	if report.failed_jobs:
		log.warning('%d job(s) were running when the daemon stopped; marked failed', report.failed_jobs)
	if report.temporary_removed:
		log.warning('removed %d half-written temporary file(s) of an earlier run', report.temporary_removed)
	if report.attached:
		log.warning('%d finished image(s) were not yet recorded; added to their records', report.attached)
	if report.rebuilt_records:
		log.warning(
			'the history had no record of %d image(s) in %s (a new or replaced database?): rebuilt %d record(s) '
			'from the images own metadata',
			report.rebuilt_images,
			outputs_dir,
			report.rebuilt_records,
		)
	if report.left:
		log.warning(
			'%d image file(s) in %s belong to no record and carry no readable metadata; they were left in place: %s',
			len(report.left),
			outputs_dir,
			', '.join(report.left[:10]) + (' …' if len(report.left) > 10 else ''),
		)
