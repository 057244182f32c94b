"""Images from outside: allowlist, pixel cap before decoding (bombs), damaged data, thumbnails of stored files."""

from __future__ import annotations

import grpc
import pytest

from diffusiond.server.app import Daemon
from diffusiond.server.errors import ImageTooLargeError, InvalidArgumentError
from diffusiond.server.images import decode_image
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from tests.badfiles import gif, png, png_bomb
from tests.helpers import collect, error_details, rpc_error

CAP = 4096 * 4096


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
	with pytest.raises(ImageTooLargeError, match='10000000000 pixels') as caught:
		decode_image(png_bomb(), CAP, 'init_image')
	assert caught.value.metadata['max_pixels'] == str(CAP)
	with pytest.raises(ImageTooLargeError, match='5000x4000'):
		decode_image(png_bomb(5000, 4000), CAP, 'init_image')  # under PIL's own cap, over ours


@pytest.mark.parametrize(
	('data', 'why'),
	[
		(b'not an image at all', 'not a readable'),
		(gif(), 'not a readable'),
		(png()[:60], 'damaged'),
		(b'', 'not a readable'),
	],
)
def test_garbage_and_disallowed_formats_are_invalid(data: bytes, why: str) -> None:
	with pytest.raises(InvalidArgumentError, match=why) as caught:
		decode_image(data, CAP, 'init_image')
	assert caught.value.violations[0].field == 'init_image'


def test_a_good_image_decodes() -> None:
	assert decode_image(png(40, 24), CAP, 'init_image').size == (40, 24)


async def test_thumbnail_of_a_replaced_file_is_refused_not_internal(
	daemon: Daemon, gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	events = await collect(gen.Generate(gen_pb.GenerateRequest(prompt='to be replaced', steps=2, seed=5)))
	job_id = events[-1].job_id
	history = history_grpc.HistoryServiceStub(channel)
	record = (await history.GetGeneration(history_pb.GetGenerationRequest(id=job_id))).generation
	stored = daemon.settings.storage.outputs_dir / record.images[0].path
	request = history_pb.GetImageRequest(generation_id=job_id, index=0, thumbnail_size=64)
	stored.write_bytes(png_bomb())
	bomb = await rpc_error(history.GetImage(request))
	stored.write_bytes(b'garbage')
	garbage = await rpc_error(history.GetImage(request))
	assert bomb.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
	assert error_details(bomb)[0].reason == 'IMAGE_TOO_LARGE'
	assert garbage.code() == grpc.StatusCode.INVALID_ARGUMENT
	await history.DeleteGeneration(history_pb.DeleteGenerationRequest(id=job_id))
