"""History records rebuilt from the images themselves: every image carries our JSON record (encode.py).

Used at start-up for finished images that no record lists: a new, moved or replaced database, or a crash
between renaming a job's files into place and recording them. Only headers and metadata are read.
"""

import warnings
from datetime import UTC, datetime
from pathlib import Path

from PIL import ExifTags, Image
from pydantic import BaseModel, ValidationError

from diffusiond.server.catalog.schemas import AUTOV2_LENGTH
from diffusiond.server.history.layout import MIME_TYPES
from diffusiond.server.jobs.encode import JSON_CHUNK, MAKER_NOTE, MAKER_PREFIX
from diffusiond.server.jobs.infotext import EmbeddedRecord
from diffusiond.server.records import GenerationRecord, StoredImage
from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.server.schemas import ImageFormat, JobSpec, JobState, LoraSpec
from diffusiond.server.tasks.legacy import legacy_task

REBUILT_NOTE = 'rebuilt from the image metadata at start-up (the history had no record of it)'
_MAX_JSON_CHARS = 1024 * 1024


class FoundImage(BaseModel):
	"""A finished image file in the outputs folder, as far as its header and metadata tell."""

	relative: str  # to the outputs folder
	index: int
	stored: StoredImage
	embedded: EmbeddedRecord | None  # None: no (readable) record of ours inside
	modified: datetime


def _embedded_json(image: Image.Image) -> str | None:
	if image.format == 'PNG':
		text = image.info.get(JSON_CHUNK)
		return text if isinstance(text, str) else None
	note = image.getexif().get_ifd(ExifTags.IFD.Exif).get(MAKER_NOTE)
	if isinstance(note, bytes) and note.startswith(MAKER_PREFIX):
		return note[len(MAKER_PREFIX) :].decode(errors='replace')
	return None


def read_image(outputs_dir: Path, relative: str, index: int) -> FoundImage | None:
	"""The image at `relative` (headers only), or None when it is no readable PNG/JPEG/WebP."""
	path = outputs_dir / relative
	try:
		info = path.stat()
		with warnings.catch_warnings():
			warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # the pixels are never decoded
			with Image.open(path, formats=['PNG', 'JPEG', 'WEBP']) as image:
				width, height = image.size
				text = _embedded_json(image)
	except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
		return None
	embedded = None
	if text is not None and len(text) <= _MAX_JSON_CHARS:
		try:
			embedded = EmbeddedRecord.model_validate_json(text)
		except ValidationError:
			embedded = None
	seed = embedded.seed if embedded is not None else 0
	stored = StoredImage(
		index=index,
		seed=seed,
		path=relative,
		mime_type=MIME_TYPES[path.suffix],
		width=width,
		height=height,
		size_bytes=info.st_size,
	)
	modified = datetime.fromtimestamp(info.st_mtime, UTC)
	return FoundImage(relative=relative, index=index, stored=stored, embedded=embedded, modified=modified)


def _spec(embedded: EmbeddedRecord) -> JobSpec:
	try:
		sampler = Sampler(embedded.sampler)
	except ValueError:
		sampler = Sampler.UNSPECIFIED
	schedule = next((found for found in Schedule if found.value == embedded.schedule), Schedule.UNSPECIFIED)
	try:
		output_format = ImageFormat(embedded.output_format)
	except ValueError:
		output_format = ImageFormat.PNG
	loras = [
		LoraSpec(
			id=lora.id,
			name=lora.name,
			path=Path(lora.name),
			weight=lora.weight,
			short_hash=lora.hash,
			key='',
			in_prompt=lora.in_prompt,
		)
		for lora in embedded.loras
	]
	return JobSpec(
		model=embedded.model.name,
		prompt=embedded.prompt,
		negative_prompt=embedded.negative_prompt,
		width=embedded.width,
		height=embedded.height,
		steps=embedded.steps,
		guidance_scale=embedded.guidance_scale,
		clip_skip=embedded.clip_skip,
		sampler=sampler,
		schedule=schedule,
		deep_cache=embedded.deep_cache,
		token_merging=embedded.token_merging,
		fast_decode=embedded.fast_decode,
		seeds=embedded.seeds or [embedded.seed - embedded.index + i for i in range(embedded.index + 1)],
		output_format=output_format,
		quality=embedded.quality,
		loras=loras,
		styles=embedded.styles,
		task=embedded.task
		or legacy_task(embedded.strength, embedded.inpaint, embedded.mask_blur, embedded.mask_crop_padding),
	)


def rebuilt_record(job_id: str, images: list[FoundImage], node: str) -> GenerationRecord | None:
	"""A succeeded record of `job_id` listing `images`, from the first one's embedded record; None if none has one."""
	source = next((image.embedded for image in images if image.embedded is not None), None)
	if source is None or source.job_id != job_id:
		return None
	try:
		spec = _spec(source)
	except ValidationError:
		return None
	finished = max(image.modified for image in images)
	return GenerationRecord(
		id=job_id,
		created_at=source.created_at or finished,
		finished_at=finished,
		model_id=source.model.id,
		model_name=source.model.name,
		model_hash=(source.model.sha256 or '')[:AUTOV2_LENGTH],
		spec=spec,
		scheduler=source.scheduler,
		device='',
		timings={},
		favourite=False,
		tags=[],
		note=REBUILT_NOTE,
		images=[image.stored for image in sorted(images, key=lambda item: item.index)],
		state=JobState.SUCCEEDED,
		node=node,
	)
