"""The background tasks of a node (heartbeat, claims, takeovers): stopped by cancelling and awaiting them."""

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)
_AGAIN_S = 1.0


async def stop_task(task: asyncio.Task[None] | None) -> None:
	"""Cancels `task` and waits for its end; a cancel the task lost (a wait that finished in the same step can
	swallow it) is sent again, so a shutdown never waits on a loop that goes on."""
	if task is None:
		return
	while not task.done():
		task.cancel()
		await asyncio.wait({task}, timeout=_AGAIN_S)
		if not task.done():
			log.warning('task %s went on after it was cancelled; cancelling it again', task.get_name())
	with contextlib.suppress(asyncio.CancelledError):
		task.result()
