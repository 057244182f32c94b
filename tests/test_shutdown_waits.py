"""A daemon's shutdown never waits forever: the relays' wait is bounded (a relay that never gets its job's end is
named), and a background loop that swallowed the cancel meant to stop it (Python 3.11's `wait_for` can, when the
event it waits for is set in the same step) is cancelled again (cluster/tasks.py)."""

import asyncio
import logging

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from diffusiond.server.cluster.relay import Relay
from diffusiond.server.cluster.tasks import stop_task
from diffusiond.server.errors import ShuttingDownError
from diffusiond.server.jobs.channel import EventChannel
from diffusiond.server.jobs.work import Work
from diffusiond.server.store.event_repo import EventRepository


async def test_a_relay_whose_job_never_ends_is_named_and_stopped(caplog: pytest.LogCaptureFixture) -> None:
	engine = create_async_engine('sqlite+aiosqlite://')
	loop = asyncio.get_running_loop()
	relay = Relay(EventRepository(async_sessionmaker(engine)), 'node-a')
	ended, stuck = Work(EventChannel(loop)), Work(EventChannel(loop))
	relay.follow(ended)
	relay.follow(stuck)
	ended.channel.put_error(ShuttingDownError('the daemon shut down'))  # not over: nothing is relayed for it
	with caplog.at_level(logging.ERROR, logger='diffusiond.server.cluster.relay'):
		async with asyncio.timeout(5):
			await relay.idle(settle_s=0.05)
	await engine.dispose()
	messages = [record.getMessage() for record in caplog.records]
	assert messages == [f'job {stuck.id} (QUEUED): its relay had no end 0s after the drain; stopped without it']


async def test_a_loop_that_swallows_its_cancel_is_still_stopped() -> None:
	swallowed = 0

	async def stubborn() -> None:
		nonlocal swallowed
		while True:
			try:
				await asyncio.sleep(10)
			except asyncio.CancelledError:
				if swallowed:
					raise
				swallowed += 1  # what a wait that finished in the same step does to the cancel

	task = asyncio.get_running_loop().create_task(stubborn())
	await asyncio.sleep(0)
	async with asyncio.timeout(10):
		await stop_task(task)
	assert task.cancelled()
	assert swallowed == 1
