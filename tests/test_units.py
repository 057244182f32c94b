"""Unit tests for the pieces with logic of their own: event channel, error table, settings, sandbox."""

import asyncio
from pathlib import Path

import grpc
import pytest
import torch
from google.rpc import code_pb2

from diffusiond.server.catalog.files import inside, walk
from diffusiond.server.catalog.schemas import ModelInfo
from diffusiond.server.engine.cache import PipelineCache
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.error_status import status_code_for, to_rpc_status
from diffusiond.server.errors import (
	DeviceOutOfMemoryError,
	DiffusiondError,
	FieldViolation,
	InvalidArgumentError,
	JobCancelledError,
	ModelLoadError,
	ModelNotFoundError,
	QueueFullError,
	ShuttingDownError,
)
from diffusiond.server.events import CompletedEvent, ImageEvent, JobTimings, ProgressEvent
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.validation import resolve
from diffusiond.server.listing import window
from diffusiond.server.schemas import GenerateParams, JobState
from diffusiond.server.services.paging import decode_token, encode_token, next_token, page_size
from diffusiond.server.settings import LimitsSettings, Settings


async def test_channel_keeps_only_the_latest_progress_and_never_drops_images() -> None:
	channel = EventChannel(asyncio.get_running_loop())
	for step in range(1, 101):
		channel.publish(ProgressEvent(step=step, total_steps=100, elapsed_s=0, eta_s=0))
	channel.publish(ImageEvent(index=0, seed=1, data=b'x', mime_type='image/png', width=1, height=1))
	channel.publish(ProgressEvent(step=100, total_steps=100, elapsed_s=0, eta_s=0))
	channel.publish(CompletedEvent(state=JobState.SUCCEEDED, timings=JobTimings()))
	channel.publish(ProgressEvent(step=1, total_steps=1, elapsed_s=0, eta_s=0))  # after the end: ignored
	events = [event async for event in channel.events()]
	assert [type(e).__name__ for e in events] == ['ProgressEvent', 'ImageEvent', 'ProgressEvent', 'CompletedEvent']
	first = events[0]
	assert isinstance(first, ProgressEvent)
	assert first.step == 100
	assert channel.dropped == 99


async def test_channel_ends_with_the_error_after_pending_events() -> None:
	channel = EventChannel(asyncio.get_running_loop())
	channel.publish(ProgressEvent(step=1, total_steps=2, elapsed_s=0, eta_s=0))
	channel.fail(JobCancelledError('stop'))
	stream = channel.events()
	assert isinstance(await anext(stream), ProgressEvent)
	with pytest.raises(JobCancelledError):
		await anext(stream)


@pytest.mark.parametrize(
	('error', 'code'),
	[
		(InvalidArgumentError([FieldViolation(field='f', description='d')]), grpc.StatusCode.INVALID_ARGUMENT),
		(ModelNotFoundError('m'), grpc.StatusCode.NOT_FOUND),
		(ModelLoadError('m'), grpc.StatusCode.FAILED_PRECONDITION),
		(QueueFullError('q', retry_after_s=2.0), grpc.StatusCode.RESOURCE_EXHAUSTED),
		(ShuttingDownError('s'), grpc.StatusCode.UNAVAILABLE),
		(JobCancelledError('c'), grpc.StatusCode.CANCELLED),
		(DiffusiondError('bug'), grpc.StatusCode.INTERNAL),
	],
)
def test_error_table(error: DiffusiondError, code: grpc.StatusCode) -> None:
	assert status_code_for(error) == code
	status = to_rpc_status(error)
	assert status.code == getattr(code_pb2, code.name)
	assert status.message == error.message
	assert len(status.details) >= 1


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
	monkeypatch.setenv('DIFFUSIOND_SERVER__PORT', '6000')
	monkeypatch.setenv('DIFFUSIOND_LIMITS__MAX_QUEUE', '3')
	monkeypatch.setenv('DIFFUSIOND_STORAGE__DATA_DIR', str(tmp_path))
	settings = Settings()
	assert settings.server.port == 6000
	assert settings.server.host == '127.0.0.1'
	assert settings.limits.max_queue == 3
	assert settings.storage.models_dir == tmp_path / 'models'
	assert settings.device.device == 'auto'


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
	monkeypatch.delenv('DIFFUSIOND_STORAGE__DATA_DIR', raising=False)
	monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path))
	assert Settings().storage.data_dir == tmp_path / 'diffusiond'


def test_names_stay_inside_the_models_folder(tmp_path: Path) -> None:
	models = tmp_path / 'models'
	(models / 'ok').mkdir(parents=True)
	(models / 'ok' / 'model_index.json').write_text('{}')
	outside = tmp_path / 'outside'
	outside.mkdir()
	(outside / 'model_index.json').write_text('{}')
	(outside / 'escape.safetensors').write_bytes(b'x')
	(models / 'link').symlink_to(outside)
	(models / 'file-link.safetensors').symlink_to(outside / 'escape.safetensors')
	assert inside(models, 'ok') == (models / 'ok').resolve()
	for name in ('../outside', 'link', '/etc', '.', 'ok/../../outside', '', 'file-link.safetensors', 'a\x00b'):
		with pytest.raises(InvalidArgumentError, match='inside'):
			inside(models, name)
	assert [stamp.path for stamp in walk(models)] == ['ok']
	assert walk(tmp_path / 'missing') == []


def _page(items: list[int], size: int, token: str) -> tuple[list[int], str]:
	found = window(items, decode_token(token), page_size(size))
	return found.items, next_token(found)


def test_paging_tokens() -> None:
	items = list(range(7))
	first, token = _page(items, 3, '')
	assert first == [0, 1, 2]
	second, token = _page(items, 3, token)
	assert second == [3, 4, 5]
	third, token = _page(items, 3, token)
	assert (third, token) == ([6], '')
	assert decode_token(encode_token(5)) == 5
	assert _page(items, 0, '')[0] == items
	assert window(items, 5, 50).total == 7


def test_device_out_of_memory_is_resource_exhausted(tiny_sd_dir: Path) -> None:
	backend = DiffusersEngine(torch.device('cpu'), torch.float32, PipelineCache(2, 2**40))
	model = ModelInfo(id='tiny', name='tiny', path=tiny_sd_dir, native_size=64)
	backend.load(model)
	spec = resolve(GenerateParams(prompt='x', steps=2, seed=1), model, LimitsSettings())
	backend.prepare(spec)

	def out_of_memory(step: int, total: int) -> bool:
		raise torch.OutOfMemoryError('CUDA out of memory (simulated)')

	with pytest.raises(DeviceOutOfMemoryError, match='ran out of memory') as caught:
		backend.run([spec], out_of_memory, [None], lambda stage, steps: None)
	assert status_code_for(caught.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
	backend.unload_all()
	assert backend.cached() == []
