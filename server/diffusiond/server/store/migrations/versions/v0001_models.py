"""The model catalog.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'models',
		sa.Column('id', sa.String(32), primary_key=True),
		sa.Column('name', sa.String(512), nullable=False),
		sa.Column('path', sa.Text, nullable=False, unique=True),
		sa.Column('format', sa.String(32), nullable=False),
		sa.Column('base', sa.String(32), nullable=False),
		sa.Column('status', sa.String(32), nullable=False),
		sa.Column('problem', sa.Text, nullable=False),
		sa.Column('inpainting', sa.Boolean, nullable=False),
		sa.Column('demo', sa.Boolean, nullable=False),
		sa.Column('hidden', sa.Boolean, nullable=False),
		sa.Column('native_size', sa.Integer, nullable=False),
		sa.Column('size_bytes', sa.BigInteger, nullable=False),
		sa.Column('mtime_ns', sa.BigInteger, nullable=False),
		sa.Column('cross_attention_dim', sa.Integer, nullable=False),
		sa.Column('in_channels', sa.Integer, nullable=False),
		sa.Column('model_channels', sa.Integer, nullable=False),
		sa.Column('sha256', sa.String(64), nullable=True),
		sa.Column('hashed_size', sa.BigInteger, nullable=True),
		sa.Column('hashed_mtime_ns', sa.BigInteger, nullable=True),
		sa.Column('display_name', sa.String(512), nullable=False),
		sa.Column('tags', sa.JSON, nullable=False),
		sa.Column('default_sampler', sa.String(64), nullable=True),
		sa.Column('default_steps', sa.Integer, nullable=True),
		sa.Column('default_guidance', sa.Float, nullable=True),
		sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
	)
	op.create_index('ix_models_name', 'models', ['name'], unique=True)
	op.create_index('ix_models_base', 'models', ['base'])
	op.create_index('ix_models_sha256', 'models', ['sha256'])


def downgrade() -> None:
	op.drop_table('models')
