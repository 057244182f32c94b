"""Finished images in an S3-compatible bucket (`storage.outputs_url = s3://bucket/prefix`), through boto3: AWS S3,
MinIO, SeaweedFS, Ceph, R2… (`storage.s3_endpoint_url` for anything but AWS). Every node of a shared queue reads and
writes the same bucket, so any daemon serves any image, also while the node that made it is down.

Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws, an instance role): never
from a setting or a message. A PUT is atomic (an object is there whole or not at all), so nothing half-written is
ever left for recovery to clean."""

import errno
from pathlib import Path, PurePosixPath
from typing import Protocol, TypedDict
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

_MISSING = {'NoSuchKey', '404', 'NotFound'}
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


class _Body(Protocol):
	def read(self) -> bytes: ...


class _Object(TypedDict):
	Body: _Body


class _Key(TypedDict):
	Key: str


class _Delete(TypedDict):
	Objects: list[_Key]
	Quiet: bool


class _Client(Protocol):
	"""The calls made of boto3's S3 client."""

	def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> object: ...

	def get_object(self, *, Bucket: str, Key: str) -> _Object: ...

	def head_object(self, *, Bucket: str, Key: str) -> object: ...

	def head_bucket(self, *, Bucket: str) -> object: ...

	def delete_objects(self, *, Bucket: str, Delete: _Delete) -> object: ...


def parse_url(url: str) -> tuple[str, str]:
	"""(bucket, key prefix ending in '/' or '') of `s3://bucket[/prefix]`; ValueError when it is not one."""
	parts = urlsplit(url)
	if parts.scheme != 's3' or not parts.netloc or parts.query or parts.fragment:
		raise ValueError(f'an outputs URL is s3://bucket[/prefix], got {url!r}')
	prefix = parts.path.strip('/')
	return parts.netloc, f'{prefix}/' if prefix else ''


def _content_type(relative: str) -> str:
	suffix = PurePosixPath(relative).suffix
	return {'.png': 'image/png', '.jpg': 'image/jpeg', '.webp': 'image/webp'}.get(suffix, 'application/octet-stream')


def _error(exc: ClientError | BotoCoreError, doing: str, where: str) -> OSError:
	"""An S3 failure as the OSError the rest of the daemon handles: missing is FileNotFoundError."""
	if isinstance(exc, ClientError):
		code = str(exc.response.get('Error', {}).get('Code', ''))
		if code in _MISSING:
			return FileNotFoundError(errno.ENOENT, f'not in the outputs store ({doing})', where)
		return OSError(errno.EIO, f'the outputs store refused to {doing}: {code}: {exc}'[:500], where)
	return OSError(errno.EIO, f'the outputs store could not {doing}: {exc}'[:500], where)


class S3Outputs:
	def __init__(self, url: str, endpoint_url: str = '', region: str = '') -> None:
		self._bucket, self._prefix = parse_url(url)
		config = Config(
			retries={'max_attempts': 3, 'mode': 'standard'},
			connect_timeout=5,
			read_timeout=30,
			s3={'addressing_style': 'path'} if endpoint_url else {},
		)
		self._client: _Client = boto3.client(
			's3', endpoint_url=endpoint_url or None, region_name=region or None, config=config
		)

	@property
	def where(self) -> str:
		return f's3://{self._bucket}/{self._prefix}'

	@property
	def folder(self) -> Path | None:
		return None

	@property
	def shared(self) -> bool:
		return True

	def _key(self, relative: str) -> str:
		path = PurePosixPath(relative)
		if path.is_absolute() or '..' in path.parts or not path.parts:
			raise FileNotFoundError(errno.ENOENT, 'not an outputs path', relative)
		return self._prefix + path.as_posix()

	def check(self) -> None:
		"""At start-up: the bucket is there and these credentials may use it (OSError saying why not)."""
		try:
			self._client.head_bucket(Bucket=self._bucket)
		except (ClientError, BotoCoreError) as exc:
			raise _error(exc, f'open bucket {self._bucket}', self.where) from None

	def write(self, relative: str, data: bytes) -> None:
		key = self._key(relative)
		try:
			self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=_content_type(relative))
		except (ClientError, BotoCoreError) as exc:
			raise _error(exc, f'store {key}', self.where) from None

	def read(self, relative: str) -> bytes:
		key = self._key(relative)
		try:
			return self._client.get_object(Bucket=self._bucket, Key=key)['Body'].read()
		except (ClientError, BotoCoreError) as exc:
			raise _error(exc, f'read {key}', self.where) from None

	def exists(self, relative: str) -> bool:
		key = self._key(relative)
		try:
			self._client.head_object(Bucket=self._bucket, Key=key)
		except (ClientError, BotoCoreError) as exc:
			error = _error(exc, f'look for {key}', self.where)
			if isinstance(error, FileNotFoundError):
				return False
			raise error from None
		return True

	def remove(self, relatives: list[str]) -> None:
		keys = [self._key(relative) for relative in relatives]
		for start in range(0, len(keys), _DELETE_BATCH):
			batch = [_Key(Key=key) for key in keys[start : start + _DELETE_BATCH]]
			try:
				self._client.delete_objects(Bucket=self._bucket, Delete=_Delete(Objects=batch, Quiet=True))
			except (ClientError, BotoCoreError) as exc:
				raise _error(exc, f'remove {len(batch)} image(s)', self.where) from None
