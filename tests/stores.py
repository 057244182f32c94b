"""The two store engines the tests run on: SQLite (the embedded default) and a real PostgreSQL server, from
DIFFUSIOND_TEST_POSTGRES_URL (`make pytest` starts one: tests/pg_cluster.py) or, where it is unset, a cluster
this run starts itself. Each test gets a fresh database of its own."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.pg_cluster import URL_VARIABLE, binaries, cluster

SQLITE = 'sqlite'
POSTGRESQL = 'postgresql'


def postgres_server() -> Iterator[str]:
	"""The server's URL (its `postgres` database); skips only where no PostgreSQL binary can be found."""
	given = os.environ.get(URL_VARIABLE)
	if given:
		yield given
		return
	bin_dir = binaries()
	if bin_dir is None:
		pytest.skip(
			f'no PostgreSQL: {URL_VARIABLE} is unset and no initdb/pg_ctl was found (apt-get install postgresql)'
		)
	with cluster(bin_dir) as url:
		yield url


async def fresh_database(server_url: str) -> AsyncIterator[str]:
	"""A new, empty database on the server for one test (dropped after it)."""
	name = f'test_{uuid.uuid4().hex[:12]}'
	admin = create_async_engine(server_url, isolation_level='AUTOCOMMIT')
	try:
		async with admin.connect() as connection:
			await connection.execute(text(f'CREATE DATABASE {name}'))
		yield server_url.rsplit('/', 1)[0] + f'/{name}'
		async with admin.connect() as connection:
			await connection.execute(text(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)'))
	finally:
		await admin.dispose()
