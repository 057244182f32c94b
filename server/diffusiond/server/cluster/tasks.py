"""The background tasks of a node (heartbeat, claims, takeovers): stopped by cancelling and awaiting them."""

import asyncio
import contextlib


async def stop_task(task: asyncio.Task[None] | None) -> None:
	if task is None:
		return
	task.cancel()
	with contextlib.suppress(asyncio.CancelledError):
		await task
