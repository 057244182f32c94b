"""The engine: the only package that imports torch and diffusers; it runs on the worker thread only.

Its first import quiets the libraries (see _quiet.py), so it runs before any diffusers pipeline module loads.
"""

from diffusiond.server.engine import _quiet

__all__ = ['_quiet']
