"""The CLI's own files: inputs checked before anything is sent, outputs prepared before a job runs.

A missing input, an output that exists (without --overwrite), a folder that cannot be made or a suffix
that does not match the image format is refused at once with exit code 2, before any work is queued.
"""

from pathlib import Path

SUFFIXES = {'png': ('.png',), 'jpeg': ('.jpg', '.jpeg'), 'webp': ('.webp',)}
_FORMATS = {suffix: name for name, suffixes in SUFFIXES.items() for suffix in suffixes}


class LocalFileError(Exception):
	"""A problem with a file on this machine: the command exits 2 with this message."""


def read_input(path: Path, option: str) -> bytes:
	try:
		return path.read_bytes()
	except OSError as exc:
		raise LocalFileError(f'cannot read {option} {path}: {exc.strerror}') from None


def check_input(path: Path, option: str) -> Path:
	"""`path` if it can be opened for reading (the file is read later, in chunks)."""
	try:
		with path.open('rb'):
			return path
	except OSError as exc:
		raise LocalFileError(f'cannot read {option} {path}: {exc.strerror}') from None


def image_format(output: Path, requested: str | None) -> str | None:
	"""The format an -o suffix asks for (None: no suffix); refuses suffixes of other formats."""
	suffix = output.suffix.lower()
	if not suffix:
		return requested
	found = _FORMATS.get(suffix)
	if found is None:
		raise LocalFileError(
			f'-o {output}: diffusiond writes PNG, JPEG or WebP images; end the name in .png, .jpg or .webp'
		)
	if requested is not None and requested != found:
		raise LocalFileError(f'-o {output} is a {found.upper()} name but --format is {requested}; make them agree')
	return found


def numbered(base: Path, count: int, suffix: str) -> list[Path]:
	"""Where `count` images go: `base` itself for one, NAME-i.ext for several; `suffix` when `base` has none."""
	base = base if base.suffix else base.with_suffix(suffix)
	if count == 1:
		return [base]
	return [base.with_name(f'{base.stem}-{i}{base.suffix}') for i in range(count)]


def prepare_outputs(paths: list[Path], overwrite: bool) -> None:
	"""Makes the folders and refuses paths that exist, unless `overwrite`."""
	taken = [path for path in paths if path.exists()]
	if taken and not overwrite:
		raise LocalFileError(f'{taken[0]} exists; pass --overwrite to replace it, or choose another -o')
	for folder in {path.parent for path in paths}:
		try:
			folder.mkdir(parents=True, exist_ok=True)
		except OSError as exc:
			raise LocalFileError(f'cannot create the folder {folder}: {exc.strerror}') from None


def write_output(path: Path, data: bytes) -> Path:
	try:
		path.write_bytes(data)
	except OSError as exc:
		raise LocalFileError(f'cannot write {path}: {exc.strerror}') from None
	return path


def controlnet_unit(text: str) -> tuple[str, bytes, float]:
	"""--controlnet NAME:IMAGE[:SCALE]: the ControlNet, the control image read (a path, - for stdin), the scale."""
	name, *rest = text.split(':')
	scale = 1.0
	if len(rest) > 1:
		try:
			scale = float(rest[-1])
			rest = rest[:-1]
		except ValueError:
			pass  # a path with a colon in it, no scale
	path = ':'.join(rest)
	if not name or not path:
		raise LocalFileError(f'--controlnet takes NAME:IMAGE[:SCALE], got {text!r}')
	return name, read_input(Path(path), '--controlnet'), scale
