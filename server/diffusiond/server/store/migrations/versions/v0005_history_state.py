"""History records carry their job's state, so a job that was running when the process died shows as failed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision: str | None = '0004'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('generations') as table:
		table.add_column(sa.Column('state', sa.String(16), nullable=False, server_default='succeeded'))
		table.add_column(sa.Column('error', sa.Text, nullable=False, server_default=''))


def downgrade() -> None:
	with op.batch_alter_table('generations') as table:
		table.drop_column('error')
		table.drop_column('state')
