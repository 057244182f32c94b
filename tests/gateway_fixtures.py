"""Daemons with the HTTP gateway on a free port: the real tiny pipeline (its own data dir with a copy of the tiny
model), or the fake engine for the queue and error paths."""

import asyncio
import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusiond.server.app import Daemon
from tests.conftest import TINY_MODEL, Overrides, make_settings


@pytest.fixture(scope='module')
async def web(tiny_sd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
	data = tmp_path_factory.mktemp('web')
	await asyncio.to_thread(shutil.copytree, tiny_sd_dir, data / 'models' / TINY_MODEL)
	daemon = Daemon(make_settings(data, {'http': {'port': 0}}))
	await daemon.start()
	await asyncio.wait_for(daemon.ready.wait(), 120)
	yield daemon
	await daemon.shutdown(2.0)


def base_url(daemon: Daemon) -> str:
	assert daemon.http is not None
	return f'http://127.0.0.1:{daemon.http.port}'


def http_overrides(extra: Overrides | None = None) -> Overrides:
	found: Overrides = {'http': {'port': 0}}
	for group, values in (extra or {}).items():
		found.setdefault(group, {}).update(values)
	return found


def noise_png(width: int, height: int, seed: int = 0, mode: str = 'RGB') -> bytes:
	channels = len(mode)
	pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
	buffer = io.BytesIO()
	Image.fromarray(pixels if channels > 1 else pixels[:, :, 0], mode=mode).save(buffer, format='PNG')
	return buffer.getvalue()
