"""The pipeline manager: the only code that touches torch and the device."""

from diffusiond.server.pipeline import _quiet
from diffusiond.server.pipeline.manager import PipelineManager

__all__ = ['PipelineManager', '_quiet']
