"""Prompt styles, with the built-in ones seeded once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from diffusiond.server.styles.builtin import BUILTIN_STYLES

revision = '0003'
down_revision: str | None = '0002'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	styles = op.create_table(
		'styles',
		sa.Column('id', sa.String(32), primary_key=True),
		sa.Column('name', sa.String(100), nullable=False),
		sa.Column('prompt', sa.Text, nullable=False),
		sa.Column('negative_prompt', sa.Text, nullable=False),
		sa.Column('description', sa.Text, nullable=False),
		sa.Column('tags', sa.JSON, nullable=False),
		sa.Column('builtin', sa.Boolean, nullable=False),
		sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
	)
	op.create_index('ix_styles_name', 'styles', ['name'], unique=True)
	now = datetime.now(UTC)
	rows = [
		{
			'id': uuid.uuid4().hex[:16],
			'name': name,
			'prompt': prompt,
			'negative_prompt': negative,
			'description': description,
			'tags': ['built-in'],
			'builtin': True,
			'created_at': now,
			'updated_at': now,
			'last_used_at': None,
		}
		for name, prompt, negative, description in BUILTIN_STYLES
	]
	op.bulk_insert(styles, rows)


def downgrade() -> None:
	op.drop_table('styles')
