"""Daemons of one shared queue in the test process (fake engine, PostgreSQL): each with its own data folder under
`root`, the fake model, and short heartbeats, leases and polls so the tests see the cluster act within seconds."""

import asyncio
from pathlib import Path

from diffusiond.server.app import Daemon
from tests.conftest import FAKE_MODEL, make_settings, write_fake_model
from tests.fakes import FakeEngine


async def start_node(
	root: Path, node: str, url: str, engine: FakeEngine, lease_s: float = 2.0, heartbeat_s: float = 0.05
) -> Daemon:
	if not (root / node / 'models' / FAKE_MODEL).exists():  # a restart finds its folder
		write_fake_model(root / node / 'models' / FAKE_MODEL)
	overrides: dict[str, dict[str, object]] = {
		'storage': {'node_id': node, 'database_url': url},
		'cluster': {'heartbeat_s': heartbeat_s, 'lease_s': lease_s, 'poll_s': 0.1},
	}
	daemon = Daemon(make_settings(root / node, overrides), engine)
	await daemon.start()
	await asyncio.wait_for(daemon.ready.wait(), 30)
	return daemon
