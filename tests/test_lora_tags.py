"""A1111's `<lora:name:weight>` tags in the prompt, and negative LoRA weights, on the real tiny pipeline."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.server.prompting.lora_tags import find_tags, strip_tags, tag_for
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.helpers import Pixels, collect, pixels, until_error
from tests.lora_files import write_tiny_lora


@pytest.fixture(scope='module')
def tag_lora(daemon: Daemon) -> Path:
	write_tiny_lora(daemon.settings.storage.loras_dir / 'tag-lora-2.safetensors', seed=14)
	return write_tiny_lora(daemon.settings.storage.loras_dir / 'tag-lora.safetensors', seed=13)


def _request(prompt: str, *loras: tuple[str, float]) -> gen_pb.GenerateRequest:
	refs = [gen_pb.LoraRef(lora=name, weight=weight) for name, weight in loras]
	return gen_pb.GenerateRequest(prompt=prompt, steps=3, seed=11, width=64, height=64, loras=refs)


async def _run(gen: gen_grpc.GenerationServiceAsyncStub, request: gen_pb.GenerateRequest) -> tuple[Pixels, str]:
	events = await collect(gen.Generate(request))
	image = next(event for event in events if event.HasField('image')).image
	return pixels(image.data), str(Image.open(io.BytesIO(image.data)).info['parameters'])


async def test_a_tag_is_the_same_lora_as_the_field_and_is_kept_in_the_infotext(
	gen: gen_grpc.GenerationServiceAsyncStub, tag_lora: Path
) -> None:
	by_field, field_text = await _run(gen, _request('a fox', ('tag-lora', 0.8)))
	by_tag, tag_text = await _run(gen, _request('a fox <lora:tag-lora:0.8>'))
	plain, _ = await _run(gen, _request('a fox'))
	assert np.array_equal(by_tag, by_field), 'the tag is read as the LoRA, not as text'
	assert not np.array_equal(by_tag, plain)
	assert field_text.splitlines()[0] == 'a fox <lora:tag-lora:0.8>', 'A1111 writes every LoRA as a tag'
	assert tag_text.splitlines()[0] == 'a fox <lora:tag-lora:0.8>'


async def test_negative_weights_apply_and_differ(gen: gen_grpc.GenerationServiceAsyncStub, tag_lora: Path) -> None:
	negative, _ = await _run(gen, _request('a fox <lora:tag-lora:-0.8>'))
	positive, _ = await _run(gen, _request('a fox <lora:tag-lora:0.8>'))
	plain, _ = await _run(gen, _request('a fox'))
	assert not np.array_equal(negative, plain)
	assert not np.array_equal(negative, positive)
	assert np.array_equal((await _run(gen, _request('a fox', ('tag-lora', -0.8))))[0], negative)


@pytest.mark.parametrize(
	('request_', 'words'),
	[
		(_request('a fox <lora:tag-lora:0.5>', ('tag-lora', 0.5)), 'named in `loras` and as <lora:tag-lora:0.5>'),
		(_request('a fox <lora:tag-lora:3>'), 'between -2 and 2'),
		(_request('a fox <lora:tag-lora:x>'), 'is not <lora:name> or <lora:name:weight>'),
		(_request('a fox <lora:tag-lora:0.5:1>'), 'give one weight'),
		(_request('a fox <lora:no-such-lora:1>'), 'no LoRA has the id, name or hash'),
	],
)
async def test_bad_tags_are_refused_with_the_reason(
	gen: gen_grpc.GenerationServiceAsyncStub, tag_lora: Path, request_: gen_pb.GenerateRequest, words: str
) -> None:
	_, error = await until_error(gen.Generate(request_))
	assert words in str(error.details())


def test_tags_parse_as_a1111_writes_them() -> None:
	tags, problems = find_tags('x <lora:a> y <LORA:b/c:0.7> <lora:d:1.5:1.5>')
	assert [(tag.name, tag.weight) for tag in tags] == [('a', 1.0), ('b/c', 0.7), ('d', 1.5)]
	assert problems == []
	assert strip_tags('a fox <lora:a:1>, snow') == 'a fox , snow'
	assert tag_for('x', 0.5) == '<lora:x:0.5>'


async def test_a_tagged_job_runs_again_from_history(
	gen: gen_grpc.GenerationServiceAsyncStub, tag_lora: Path, channel: grpc.aio.Channel
) -> None:
	events = await collect(gen.Generate(_request('a fox <lora:tag-lora:0.7>', ('tag-lora-2', 0.4))))
	first = pixels(next(event for event in events if event.HasField('image')).image.data)
	again = await collect(
		history_grpc.HistoryServiceStub(channel).Regenerate(history_pb.RegenerateRequest(id=events[0].job_id))
	)
	assert np.array_equal(pixels(next(event for event in again if event.HasField('image')).image.data), first)
