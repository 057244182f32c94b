"""diffusiond server: the daemon that owns one device and serves Stable Diffusion over gRPC."""

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
	try:
		return version('diffusiond')
	except PackageNotFoundError:  # running from a source tree that was never installed
		return '0.0.0+unknown'


__version__ = _version()
__all__ = ['__version__']
