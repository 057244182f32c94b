"""Textual-inversion embeddings and VAEs, one table each (the same columns), and a model's default VAE.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision: str | None = '0008'
branch_labels: str | None = None
depends_on: str | None = None
TABLES = ('embeddings', 'vaes')


def _columns() -> list[sa.Column[object]]:
	return [
		sa.Column('id', sa.String(32), primary_key=True),
		sa.Column('name', sa.String(512), nullable=False),
		sa.Column('path', sa.Text, nullable=False, unique=True),
		sa.Column('status', sa.String(32), nullable=False),
		sa.Column('problem', sa.Text, nullable=False),
		sa.Column('layout', sa.String(32), nullable=False),
		sa.Column('base', sa.String(32), nullable=False),
		sa.Column('pickle', sa.Boolean, nullable=False),
		sa.Column('width', sa.Integer, nullable=False),
		sa.Column('vectors', sa.Integer, nullable=False),
		sa.Column('size_bytes', sa.BigInteger, nullable=False),
		sa.Column('mtime_ns', sa.BigInteger, nullable=False),
		sa.Column('sha256', sa.String(64), nullable=True),
		sa.Column('hashed_size', sa.BigInteger, nullable=True),
		sa.Column('hashed_mtime_ns', sa.BigInteger, nullable=True),
		sa.Column('hidden', sa.Boolean, nullable=False),
		sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
	]


def upgrade() -> None:
	for table in TABLES:
		op.create_table(table, *_columns())
		op.create_index(f'ix_{table}_name', table, ['name'], unique=True)
		op.create_index(f'ix_{table}_base', table, ['base'])
		op.create_index(f'ix_{table}_sha256', table, ['sha256'])
	with op.batch_alter_table('models') as batch:
		batch.add_column(sa.Column('default_vae', sa.String(512), nullable=True))


def downgrade() -> None:
	with op.batch_alter_table('models') as batch:
		batch.drop_column('default_vae')
	for table in TABLES:
		op.drop_table(table)
