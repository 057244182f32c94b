"""Upscalers: the columns of embeddings, VAEs and ControlNets, and what spandrel reads from the file (architecture,
scale, purpose).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision: str | None = '0010'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'upscalers',
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
		sa.Column('architecture', sa.String(64), nullable=False),
		sa.Column('scale', sa.Integer, nullable=False),
		sa.Column('purpose', sa.String(32), nullable=False),
	)
	op.create_index('ix_upscalers_name', 'upscalers', ['name'], unique=True)
	op.create_index('ix_upscalers_base', 'upscalers', ['base'])
	op.create_index('ix_upscalers_sha256', 'upscalers', ['sha256'])


def downgrade() -> None:
	op.drop_table('upscalers')
