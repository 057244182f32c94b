"""The async engine (SQLite in WAL mode by default, any SQLAlchemy async URL otherwise) and migrations."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from diffusiond.server.errors import StorageFullError, StorageReadOnlyError

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


# SQLite's result codes (sqlite3 exceptions carry them as sqlite_errorname) and PostgreSQL's SQLSTATEs.
_FULL = ('SQLITE_FULL', '53100')
_READ_ONLY = ('SQLITE_READONLY', 'SQLITE_CANTOPEN', '25006')


def _storage_refusal(context: ExceptionContext, where: str) -> None:
	"""A full or read-only database is the user's disk, not a bug: raised as the domain's storage errors."""
	original = context.original_exception
	code = str(getattr(original, 'sqlite_errorname', '') or getattr(original, 'sqlstate', '') or '')
	if code.startswith(_FULL):
		raise StorageFullError(
			f'the database {where} is full (no space left on its disk): free some space, then retry',
			metadata={'path': where},
		) from original
	if code.startswith(_READ_ONLY):
		raise StorageReadOnlyError(
			f'the database {where} cannot be written (a read-only disk or folder): make it writable, then retry',
			metadata={'path': where},
		) from original


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
		where = self.engine.url.database or self.engine.url.render_as_string(hide_password=True)
		event.listen(self.engine.sync_engine, 'handle_error', lambda context: _storage_refusal(context, where))
		self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)

	def _make_folder(self) -> None:
		path = self.engine.url.database
		if self.engine.dialect.name == 'sqlite' and path and path != ':memory:':
			Path(path).parent.mkdir(parents=True, exist_ok=True)

	async def upgrade(self, target: str = 'head') -> None:
		"""Applies every pending Alembic migration up to `target` (on the engine's own connection, never blocking
		the loop)."""
		self._make_folder()

		def run(connection: Connection) -> None:
			config = alembic_config(self.url)
			config.attributes['connection'] = connection
			command.upgrade(config, target)

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
