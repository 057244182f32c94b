"""Live previews on the real tiny pipeline: JPEGs at the asked steps, latest-wins, images unchanged."""

from __future__ import annotations

import asyncio

from diffusiond.server.events import ImageEvent, PreviewEvent, ProgressEvent
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import collect, pixels


async def test_previews_arrive_at_the_asked_steps_and_leave_the_image_unchanged(
	gen: gen_grpc.GenerationServiceAsyncStub,
) -> None:
	request = gen_pb.GenerateRequest(prompt='a fox', steps=6, seed=21, sampler=gen_pb.SAMPLER_EULER, preview_every=2)
	with_previews = await collect(gen.Generate(request))
	request.preview_every = 0
	without = await collect(gen.Generate(request))
	previews = [event.preview for event in with_previews if event.HasField('preview')]
	assert [preview.step for preview in previews] == [2, 4, 6]
	assert all(preview.data.startswith(b'\xff\xd8') and preview.mime_type == 'image/jpeg' for preview in previews)
	assert previews[0].width == previews[0].height == 64  # twice the 32x32 latents of the 64x64 tiny model
	assert not any(event.HasField('preview') for event in without)
	image = next(event.image.data for event in with_previews if event.HasField('image'))
	baseline = next(event.image.data for event in without if event.HasField('image'))
	assert (pixels(image) == pixels(baseline)).all(), 'previews never change the result'


async def test_an_unread_preview_is_replaced_by_the_next_one() -> None:
	channel = EventChannel(asyncio.get_running_loop())
	for step in range(1, 11):
		channel.publish(ProgressEvent(step=step, total_steps=10, elapsed_s=0, eta_s=0))
		channel.publish(PreviewEvent(step=step, data=b'jpeg', width=1, height=1))
	channel.publish(ImageEvent(index=0, seed=1, data=b'x', mime_type='image/png', width=1, height=1))
	await asyncio.sleep(0)
	events = []
	async for event in channel.events():
		events.append(event)
		if isinstance(event, ImageEvent):
			break
	assert [type(event).__name__ for event in events] == ['ProgressEvent', 'PreviewEvent', 'ImageEvent']
	assert [event.step for event in events[:2] if isinstance(event, ProgressEvent | PreviewEvent)] == [10, 10]
