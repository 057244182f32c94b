"""Downloads a checkpoint over http(s) into the models folder. Blocking: runs in a thread.

The body goes to a hidden `.download-<key>.part` file (scans skip hidden names) that survives an
interrupted transfer; the next attempt resumes it with Range + If-Range. Only a complete, verified
file is renamed to its final name, so the catalog never sees half a checkpoint.
"""

import hashlib
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path

from pydantic import BaseModel

from diffusiond.server.catalog.body import check_type, final_name, http_error, verify_header
from diffusiond.server.catalog.files import inside, sha256_file
from diffusiond.server.catalog.transfer import DownloadProgress, Report, Transfer, expected_total, receive
from diffusiond.server.errors import (
	AlreadyExistsError,
	DownloadRefusedError,
	DownloadUnavailableError,
	FieldViolation,
	InvalidArgumentError,
)
from diffusiond.server.settings import DownloadSettings


class DownloadRequest(BaseModel):
	url: str
	file_name: str = ''
	sha256: str = ''
	overwrite: bool = False


class DownloadResult(BaseModel):
	path: str  # relative to the models folder
	sha256: str


MAX_URL = 8192


def _invalid(field: str, text: str) -> InvalidArgumentError:
	return InvalidArgumentError([FieldViolation(field=field, description=text)])


class Downloader:
	def __init__(self, models_dir: Path, settings: DownloadSettings, allow_pickle: bool) -> None:
		self.models_dir = models_dir
		self.settings = settings
		self.allow_pickle = allow_pickle
		self._active: set[str] = set()
		self._lock = threading.Lock()

	def _check_request(self, request: DownloadRequest) -> urllib.request.Request:
		schemes = '/'.join(self.settings.allowed_schemes)
		refusal = _invalid('url', f'url must be an absolute {schemes} URL, got {request.url[:300]!r}')
		if len(request.url) > MAX_URL or any(ord(char) < 0x21 or ord(char) == 0x7F for char in request.url):
			raise _invalid('url', f'url must be at most {MAX_URL} characters with no spaces or control characters')
		try:
			parsed = urllib.parse.urlsplit(request.url)
			host, _ = parsed.hostname, parsed.port  # a bad IPv6 literal or port raises here
		except ValueError:
			raise refusal from None
		if parsed.scheme not in self.settings.allowed_schemes or not host:
			raise refusal
		if request.sha256 and (
			len(request.sha256) != 64 or any(c not in '0123456789abcdefABCDEF' for c in request.sha256)
		):
			raise _invalid('sha256', 'sha256 must be 64 hex characters (the full hash, not the AutoV2 short one)')
		http = urllib.request.Request(request.url, headers={'User-Agent': 'diffusiond'})
		token = self._token_for(host)
		if token:  # never sent on to the host of a redirect (signed CDN links)
			http.add_unredirected_header('Authorization', f'Bearer {token}')
		return http

	def _token_for(self, host: str) -> str:
		for pattern, token in self.settings.tokens.items():
			if host == pattern or host.endswith('.' + pattern):
				return token
		return ''

	def _target(self, request: DownloadRequest, name: str) -> Path:
		target = inside(self.models_dir, name, field='file_name')
		if any(part.startswith('.') for part in target.relative_to(self.models_dir.resolve()).parts):
			raise _invalid(
				'file_name', f'no part of file_name may start with "." (hidden files are not scanned): {name!r}'
			)
		suffix = target.suffix.lower()
		allowed = {'.safetensors'} | ({'.ckpt', '.pt', '.pth', '.bin'} if self.allow_pickle else set())
		if suffix not in allowed:
			raise _invalid('file_name', f'the file must end in {", ".join(sorted(allowed))}, got {target.name!r}')
		if target.exists() and not request.overwrite:
			raise AlreadyExistsError(
				f'{target.relative_to(self.models_dir.resolve())} exists; set overwrite to replace it'
			)
		return target

	def run(self, request: DownloadRequest, cancel: threading.Event, report: Report) -> DownloadResult:
		"""Downloads `request.url`; one transfer per URL at a time (they would share the partial file)."""
		key = hashlib.sha256(request.url.encode()).hexdigest()[:16]
		with self._lock:
			if key in self._active:
				raise AlreadyExistsError(f'{request.url} is being downloaded already')
			self._active.add(key)
		try:
			return self._download(request, key, cancel, report)
		finally:
			with self._lock:
				self._active.discard(key)

	def _download(self, request: DownloadRequest, key: str, cancel: threading.Event, report: Report) -> DownloadResult:
		http = self._check_request(request)
		if request.file_name:
			self._target(request, request.file_name)  # refuse bad names before any transfer
		self.models_dir.mkdir(parents=True, exist_ok=True)
		part = self.models_dir / f'.download-{key}.part'
		validator = part.with_suffix('.validator')
		offset = part.stat().st_size if part.exists() and validator.exists() else 0
		if offset:
			http.add_header('Range', f'bytes={offset}-')
			http.add_header('If-Range', validator.read_text())
		try:
			with urllib.request.urlopen(http, timeout=self.settings.timeout_s) as response:
				name = request.file_name or final_name(request.url, response)
				target = self._target(request, name)
				resumed = offset if response.status == 206 else 0
				total = expected_total(response, resumed, self.settings)
				check_type(response)
				if stamp := response.headers.get('ETag') or response.headers.get('Last-Modified'):
					validator.write_text(stamp)
				receive(response, part, Transfer(resumed=resumed, total=total), self.settings, cancel, report)
		except urllib.error.HTTPError as exc:
			exc.close()  # the error response holds the connection
			if exc.code == 416 and offset:  # the partial file does not fit the server's file: start over
				part.unlink()
				validator.unlink(missing_ok=True)
				return self._download(request, key, cancel, report)
			raise http_error(exc.code, str(exc.reason), request.url) from exc
		except (urllib.error.URLError, HTTPException, TimeoutError, ConnectionError) as exc:
			kept = part.stat().st_size if part.exists() else 0
			then = (
				f'retry to resume from the {kept} bytes kept'
				if kept and validator.exists()
				else 'retry once the server can be reached'
			)
			raise DownloadUnavailableError(f'the download from {request.url} failed ({exc}); {then}') from exc
		report(DownloadProgress(bytes=total, total_bytes=total, phase='verifying'))
		try:
			digest = sha256_file(part)
			if request.sha256 and digest != request.sha256.lower():
				raise DownloadRefusedError(
					f'the file has sha256 {digest}, not the expected {request.sha256}; it was discarded'
				)
			verify_header(part, target)
		except DownloadRefusedError:
			part.unlink()
			validator.unlink(missing_ok=True)
			raise
		target.parent.mkdir(parents=True, exist_ok=True)
		os.replace(part, target)
		validator.unlink(missing_ok=True)
		return DownloadResult(path=target.relative_to(self.models_dir.resolve()).as_posix(), sha256=digest)
