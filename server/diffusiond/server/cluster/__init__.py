"""Several daemons on one database: each node's lease (heartbeat.py)."""
