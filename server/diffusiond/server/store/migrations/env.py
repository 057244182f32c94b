"""Alembic environment: runs on the connection `Database.upgrade` hands over, or opens its own engine."""

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from diffusiond.server.store.tables import Base

config = context.config


def _migrate(connection: Connection) -> None:
	context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
	with context.begin_transaction():
		context.run_migrations()


async def _migrate_with_own_engine(url: str) -> None:
	engine = create_async_engine(url)
	async with engine.begin() as connection:
		await connection.run_sync(_migrate)
	await engine.dispose()


def main() -> None:
	if context.is_offline_mode():
		context.configure(url=config.get_main_option('sqlalchemy.url'), target_metadata=Base.metadata)
		with context.begin_transaction():
			context.run_migrations()
		return
	connection = config.attributes.get('connection')
	if isinstance(connection, Connection):
		_migrate(connection)
	else:
		asyncio.run(_migrate_with_own_engine(config.get_main_option('sqlalchemy.url') or ''))


main()
