"""The LoRA catalog.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision: str | None = '0001'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'loras',
		sa.Column('id', sa.String(32), primary_key=True),
		sa.Column('name', sa.String(512), nullable=False),
		sa.Column('path', sa.Text, nullable=False, unique=True),
		sa.Column('format', sa.String(32), nullable=False),
		sa.Column('base', sa.String(32), nullable=False),
		sa.Column('status', sa.String(32), nullable=False),
		sa.Column('problem', sa.Text, nullable=False),
		sa.Column('cross_attention_dim', sa.Integer, nullable=False),
		sa.Column('rank', sa.Integer, nullable=False),
		sa.Column('alpha', sa.Float, nullable=True),
		sa.Column('unet', sa.Boolean, nullable=False),
		sa.Column('text_encoder', sa.Boolean, nullable=False),
		sa.Column('modules', sa.Integer, nullable=False),
		sa.Column('output_name', sa.String(512), nullable=False),
		sa.Column('trained_on', sa.String(512), nullable=False),
		sa.Column('suggested_triggers', sa.JSON, nullable=False),
		sa.Column('size_bytes', sa.BigInteger, nullable=False),
		sa.Column('mtime_ns', sa.BigInteger, nullable=False),
		sa.Column('data_offset', sa.BigInteger, nullable=False),
		sa.Column('sha256', sa.String(64), nullable=True),
		sa.Column('addnet_hash', sa.String(64), nullable=True),
		sa.Column('hashed_size', sa.BigInteger, nullable=True),
		sa.Column('hashed_mtime_ns', sa.BigInteger, nullable=True),
		sa.Column('display_name', sa.String(512), nullable=False),
		sa.Column('tags', sa.JSON, nullable=False),
		sa.Column('trigger_words', sa.JSON, nullable=True),
		sa.Column('default_weight', sa.Float, nullable=False),
		sa.Column('enabled', sa.Boolean, nullable=False),
		sa.Column('hidden', sa.Boolean, nullable=False),
		sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
	)
	op.create_index('ix_loras_name', 'loras', ['name'], unique=True)
	op.create_index('ix_loras_base', 'loras', ['base'])
	op.create_index('ix_loras_sha256', 'loras', ['sha256'])
	op.create_index('ix_loras_addnet_hash', 'loras', ['addnet_hash'])


def downgrade() -> None:
	op.drop_table('loras')
