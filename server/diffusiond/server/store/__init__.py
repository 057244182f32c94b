"""The persistent store: one async SQLAlchemy engine, Alembic migrations, repositories returning pydantic models."""

from diffusiond.server.store.database import Database, default_url
from diffusiond.server.store.model_repo import ModelRepository

__all__ = ['Database', 'ModelRepository', 'default_url']
