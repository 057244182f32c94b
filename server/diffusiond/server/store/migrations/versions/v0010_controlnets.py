"""ControlNets: the same columns as embeddings and VAEs (one file each, probed from its shapes and config).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision: str | None = '0009'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'controlnets',
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
	)
	op.create_index('ix_controlnets_name', 'controlnets', ['name'], unique=True)
	op.create_index('ix_controlnets_base', 'controlnets', ['base'])
	op.create_index('ix_controlnets_sha256', 'controlnets', ['sha256'])


def downgrade() -> None:
	op.drop_table('controlnets')
