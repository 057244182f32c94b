"""Writing a file so that it is either complete under its name or not there at all."""

import os
from pathlib import Path


def write_file(path: Path, data: bytes) -> None:
	"""A hidden temporary name, fsync, then an atomic rename; on failure the temporary file is removed."""
	path.parent.mkdir(parents=True, exist_ok=True)
	scratch = path.with_name(f'.{path.name}.tmp')
	try:
		with scratch.open('wb') as file:
			file.write(data)
			file.flush()
			os.fsync(file.fileno())
		os.replace(scratch, path)
	except BaseException:
		scratch.unlink(missing_ok=True)  # a full disk leaves no partial file behind, not even until the next start
		raise


def remove_files(paths: list[Path]) -> None:
	for path in paths:
		path.unlink(missing_ok=True)
