"""Chooses the torch device and dtype, and reads device memory figures."""

import ctypes
import ctypes.util
import gc
import sys

import psutil
import torch

from diffusiond.server.jobs.engine_api import DeviceStats
from diffusiond.server.settings import DeviceSettings

_DTYPES = {'float16': torch.float16, 'bfloat16': torch.bfloat16, 'float32': torch.float32}


def _mps_available() -> bool:
	backend = getattr(torch.backends, 'mps', None)
	return bool(backend is not None and backend.is_available())


def choose_device(settings: DeviceSettings) -> torch.device:
	"""CUDA if available, else MPS, else CPU, unless a device is set."""
	if settings.device != 'auto':
		return torch.device(settings.device)
	if torch.cuda.is_available():
		return torch.device('cuda')
	if _mps_available():
		return torch.device('mps')
	return torch.device('cpu')


def choose_dtype(settings: DeviceSettings, device: torch.device) -> torch.dtype:
	"""float16 on CUDA, float32 elsewhere, unless a dtype is set."""
	if settings.dtype != 'auto':
		return _DTYPES[settings.dtype]
	return torch.float16 if device.type == 'cuda' else torch.float32


def device_stats(device: torch.device, dtype: torch.dtype) -> DeviceStats:
	dtype_name = str(dtype).removeprefix('torch.')
	if device.type == 'cuda':
		index = device.index if device.index is not None else torch.cuda.current_device()
		props = torch.cuda.get_device_properties(index)
		return DeviceStats(
			kind='cuda',
			name=props.name,
			dtype=dtype_name,
			memory_total_bytes=props.total_memory,
			memory_used_bytes=torch.cuda.memory_reserved(index),
		)
	return DeviceStats(kind=device.type, name=device.type, dtype=dtype_name)


def free_bytes(device: torch.device) -> int:
	"""What the device has free now: CUDA's free memory, else the system's available RAM."""
	if device.type == 'cuda':
		free, _ = torch.cuda.mem_get_info(device)
		return int(free)
	return int(psutil.virtual_memory().available)


def _trim_heap() -> None:
	"""Asks glibc to hand freed heap pages back to the OS (freed weights otherwise stay in RSS)."""
	if sys.platform.startswith('linux') and (libc := ctypes.util.find_library('c')):
		ctypes.CDLL(libc).malloc_trim(0)


def release_memory(device: torch.device) -> None:
	"""Collects dropped models and returns their memory: device caches to the driver, heap to the OS."""
	gc.collect()
	_trim_heap()
	if device.type == 'cuda':
		torch.cuda.empty_cache()
	elif device.type == 'mps':
		torch.mps.empty_cache()
