"""Property-based: every RPC with random and adversarial values answers OK or a precise non-INTERNAL code,
the daemon stays healthy, and no file appears outside its data dir.

Hostile files (truncated safetensors, a header claiming 2**62 bytes, garbage, a pickle, and tests/hostile_files.py)
lie in the models and LoRA folders and the database holds damaged rows (tests/hostile_rows.py), so every RPC meets
them too; a finished image made before must be untouched after. Runs on the real tiny pipeline with tight limits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffusiond.server.app import Daemon
from diffusiond.server.rpc import SERVICES
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.badfiles import safetensors_with_huge_header, truncated_safetensors
from tests.conftest import TINY_MODEL, make_settings
from tests.fuzz_values import message
from tests.helpers import collect
from tests.hostile_files import hostile_loras, hostile_models
from tests.hostile_rows import damage

METHODS = [method for service in SERVICES for method in service.methods]
# Never the answer to bad input; DEADLINE_EXCEEDED would mean a call hung for a minute.
_FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
_LIMITS = {'max_size': 128, 'max_steps': 3, 'max_images': 2, 'max_queue': 4}


@pytest.fixture(scope='module')
async def fuzz_daemon(tiny_sd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
	root = tmp_path_factory.mktemp('fuzz')
	data = root / 'data'
	shutil.copytree(tiny_sd_dir, data / 'models' / TINY_MODEL)
	hostile = {
		'truncated.safetensors': truncated_safetensors(),
		'huge-header.safetensors': safetensors_with_huge_header(),
		'garbage.safetensors': b'garbage' * 64,
		'pickled.ckpt': b'\x80\x04\x95garbage',
	}
	for folder in ('models', 'loras'):
		(data / folder).mkdir(parents=True, exist_ok=True)
		for name, content in hostile.items():
			(data / folder / name).write_bytes(content)
	hostile_models(data / 'models')  # symlink loops, names that are not UTF-8, absurd shapes and configs
	hostile_loras(data / 'loras')
	(root / 'outside').mkdir()
	(root / 'outside' / 'keep.txt').write_text('untouched')
	overrides: dict[str, dict[str, object]] = {'limits': dict(_LIMITS), 'downloads': {'timeout_s': 2.0}}
	daemon = Daemon(make_settings(data, overrides))
	await daemon.start()
	await asyncio.wait_for(daemon.ready.wait(), 60)
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:  # a finished image to keep
		request = gen_pb.GenerateRequest(prompt='kept', steps=1, width=64, height=64)
		await collect(gen_grpc.GenerationServiceStub(chan).Generate(request))
	finished = {path: path.read_bytes() for path in (data / 'outputs').rglob('*.png')}
	await damage(daemon.database.sessions)  # and rows an old or hand-edited database holds
	yield daemon
	await daemon.shutdown(0.0)
	assert sorted(path.name for path in root.iterdir()) == ['data', 'outside']
	assert [path.name for path in (root / 'outside').iterdir()] == ['keep.txt']
	assert (root / 'outside' / 'keep.txt').read_text() == 'untouched'
	assert len(finished) == 1
	assert all(path.read_bytes() == data for path, data in finished.items()), 'no finished image is ever removed'


def _invoke(channel: grpc.Channel, method: MethodDescriptor, requests: list[Message]) -> None:
	path = f'/{method.containing_service.full_name}/{method.name}'
	serialize = message_factory.GetMessageClass(method.input_type).SerializeToString
	deserialize = message_factory.GetMessageClass(method.output_type).FromString
	if method.client_streaming:
		channel.stream_unary(path, serialize, deserialize)(iter(requests), timeout=60)
	elif method.server_streaming:
		for _ in channel.unary_stream(path, serialize, deserialize)(requests[0], timeout=60):
			pass
	else:
		channel.unary_unary(path, serialize, deserialize)(requests[0], timeout=60)


def _answer(
	channel: grpc.Channel, method: MethodDescriptor, requests: list[Message]
) -> tuple[grpc.StatusCode, str] | None:
	"""None when the call succeeded, else its status code and message."""
	try:
		_invoke(channel, method, requests)
	except grpc.RpcError as error:
		if isinstance(error, grpc.Call):
			return error.code(), error.details() or ''
		return grpc.StatusCode.UNKNOWN, str(error)
	return None


def _fuzz(address: str, method: MethodDescriptor) -> None:
	requests = st.lists(message(method.input_type), min_size=1, max_size=3 if method.client_streaming else 1)
	with grpc.insecure_channel(address, options=[('grpc.max_send_message_length', 64 * 1024 * 1024)]) as channel:
		health = health_pb2_grpc.HealthStub(channel)

		@settings(
			max_examples=int(os.environ.get('DIFFUSIOND_FUZZ_EXAMPLES', '25')),
			deadline=None,
			derandomize=True,
			database=None,
			suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
		)
		@given(requests)
		def check(batch: list[Message]) -> None:
			answer = _answer(channel, method, batch)
			if answer is not None:
				code, details = answer
				assert code not in _FORBIDDEN, f'{method.name} answered {code}: {details}'
				assert details, f'{method.name} answered {code} without a message'
			assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1  # SERVING

		check()


@pytest.mark.parametrize('method', METHODS, ids=[f'{m.containing_service.name}.{m.name}' for m in METHODS])
async def test_every_rpc_survives_random_and_adversarial_input(fuzz_daemon: Daemon, method: MethodDescriptor) -> None:
	before = _working_dir()
	await asyncio.to_thread(_fuzz, f'127.0.0.1:{fuzz_daemon.port}', method)
	assert _working_dir() == before, 'nothing is written to the working directory'


def _working_dir() -> list[str]:
	return sorted(name for name in os.listdir() if name != '.hypothesis')  # hypothesis' own cache folder


def test_every_service_is_fuzzed() -> None:
	names: Iterator[str] = (method.containing_service.name for method in METHODS)
	assert set(names) == {
		'GenerationService',
		'ModelService',
		'LoraService',
		'AssetService',
		'StyleService',
		'HistoryService',
		'SystemService',
	}
