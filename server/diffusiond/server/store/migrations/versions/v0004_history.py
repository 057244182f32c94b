"""Generation history and its images.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision: str | None = '0003'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'generations',
		sa.Column('id', sa.String(36), primary_key=True),
		sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('model_id', sa.String(32), nullable=False),
		sa.Column('model_name', sa.String(512), nullable=False),
		sa.Column('model_hash', sa.String(16), nullable=False),
		sa.Column('prompt', sa.Text, nullable=False),
		sa.Column('negative_prompt', sa.Text, nullable=False),
		sa.Column('styles', sa.JSON, nullable=False),
		sa.Column('loras', sa.JSON, nullable=False),
		sa.Column('spec', sa.Text, nullable=False),
		sa.Column('scheduler', sa.String(128), nullable=False),
		sa.Column('device', sa.String(128), nullable=False),
		sa.Column('timings', sa.JSON, nullable=False),
		sa.Column('favourite', sa.Boolean, nullable=False),
		sa.Column('tags', sa.JSON, nullable=False),
		sa.Column('note', sa.Text, nullable=False),
	)
	op.create_index('ix_generations_created_at', 'generations', ['created_at'])
	op.create_index('ix_generations_model_id', 'generations', ['model_id'])
	op.create_table(
		'generation_images',
		sa.Column(
			'generation_id', sa.String(36), sa.ForeignKey('generations.id', ondelete='CASCADE'), primary_key=True
		),
		sa.Column('index', sa.Integer, primary_key=True),
		sa.Column('seed', sa.BigInteger, nullable=False),
		sa.Column('path', sa.Text, nullable=False),
		sa.Column('mime_type', sa.String(32), nullable=False),
		sa.Column('width', sa.Integer, nullable=False),
		sa.Column('height', sa.Integer, nullable=False),
		sa.Column('size_bytes', sa.BigInteger, nullable=False),
	)


def downgrade() -> None:
	op.drop_table('generation_images')
	op.drop_table('generations')
