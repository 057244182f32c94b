"""Where a job's images live in the outputs folder: `YYYY-MM-DD/<job id>-<index>.<png|jpg|webp>`.

The name says whose file it is, so a record can only ever name its own files, and the shape is checked
wherever a path comes from outside (archives) before it reaches the filesystem.
"""

import re
from datetime import datetime

from diffusiond.server.schemas import ImageFormat

SUFFIXES = {ImageFormat.PNG: '.png', ImageFormat.JPEG: '.jpg', ImageFormat.WEBP: '.webp'}
MIME_TYPES = {suffix: fmt.value for fmt, suffix in SUFFIXES.items()}
_UUID = r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
IMAGE_NAME = re.compile(rf'^({_UUID})-(\d{{1,4}})\.(png|jpg|webp)$')
_IMAGE_PATH = re.compile(rf'^\d{{4}}-\d{{2}}-\d{{2}}/({_UUID})-(\d{{1,4}})(\.png|\.jpg|\.webp)$')


def image_path(created_at: datetime, job_id: str, index: int, fmt: ImageFormat) -> str:
	return f'{created_at.strftime("%Y-%m-%d")}/{job_id}-{index}{SUFFIXES[fmt]}'


def path_problem(path: str, job_id: str, index: int, mime_type: str) -> str | None:
	"""Why `path` cannot be image `index` of job `job_id` (with that MIME type), or None."""
	match = _IMAGE_PATH.match(path)
	if match is None:
		return f'{path!r} is not an outputs path of the form YYYY-MM-DD/<job id>-<index>.<png|jpg|webp>'
	if (match.group(1), int(match.group(2))) != (job_id, index):
		return f'{path!r} is not the file of image {index} of {job_id}'
	if MIME_TYPES[match.group(3)] != mime_type:
		return f'{path!r} does not hold {mime_type}'
	return None
