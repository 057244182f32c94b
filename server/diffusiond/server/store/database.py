"""The async engine (SQLite in WAL mode by default, any SQLAlchemy async URL otherwise) and migrations."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / 'migrations'
DATABASE_FILE = 'diffusiond.db'


def default_url(data_dir: Path) -> str:
	return f'sqlite+aiosqlite:///{data_dir / DATABASE_FILE}'


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
	"""WAL lets readers run beside the one writer; foreign keys on; NORMAL sync is safe with WAL."""
	cursor = dbapi_connection.cursor()
	for pragma in ('journal_mode=WAL', 'foreign_keys=ON', 'synchronous=NORMAL', 'busy_timeout=5000'):
		cursor.execute(f'PRAGMA {pragma}')
	cursor.close()


def alembic_config(url: str) -> Config:
	config = Config()
	config.set_main_option('script_location', str(MIGRATIONS))
	config.set_main_option('sqlalchemy.url', url.replace('%', '%%'))
	return config


class Database:
	"""Owns the engine and the session factory; `upgrade()` applies migrations up to head."""

	def __init__(self, url: str) -> None:
		self.url = url
		self.engine: AsyncEngine = create_async_engine(url)
		if self.engine.dialect.name == 'sqlite':
			event.listen(self.engine.sync_engine, 'connect', _sqlite_pragmas)
		self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)

	def _make_folder(self) -> None:
		path = self.engine.url.database
		if self.engine.dialect.name == 'sqlite' and path and path != ':memory:':
			Path(path).parent.mkdir(parents=True, exist_ok=True)

	async def upgrade(self) -> None:
		"""Applies every pending Alembic migration (on the engine's own connection, never blocking the loop)."""
		self._make_folder()

		def run(connection: Connection) -> None:
			config = alembic_config(self.url)
			config.attributes['connection'] = connection
			command.upgrade(config, 'head')

		async with self.engine.begin() as connection:
			await connection.run_sync(run)
		log.info('database ready at %s', self.engine.url.render_as_string(hide_password=True))

	async def revision(self) -> str:
		"""The applied migration revision ('' before the first)."""

		def read(connection: Connection) -> str:
			return MigrationContext.configure(connection).get_current_revision() or ''

		self._make_folder()
		async with self.engine.connect() as connection:
			return await connection.run_sync(read)

	async def close(self) -> None:
		await self.engine.dispose()
