"""The daemon's node id: its name in the records it shares a database with other daemons. Start-up recovery
touches only its own node's records. Set it (DIFFUSIOND_STORAGE__NODE_ID), or one is generated once and kept in
<data_dir>/node-id, so a daemon keeps its id across restarts."""

import re
import uuid
from pathlib import Path

from diffusiond.server.history.files import write_file

NODE_FILE = 'node-id'
NODE_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')


def resolve_node_id(configured: str, data_dir: Path) -> str:
	"""The configured id, else the one kept in the data folder, else a new one written there (blocking)."""
	if configured:
		return configured
	path = data_dir / NODE_FILE
	try:
		kept = path.read_text(encoding='utf-8').strip()
	except (FileNotFoundError, UnicodeDecodeError):  # none yet, or not one we wrote
		kept = ''
	if NODE_ID.match(kept):
		return kept
	node = f'node-{uuid.uuid4().hex[:12]}'
	data_dir.mkdir(parents=True, exist_ok=True)
	write_file(path, f'{node}\n'.encode())
	return node
