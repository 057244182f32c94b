"""Jobs: the queue in the store, so that a restart runs what was accepted (jobs/journal.py).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision: str | None = '0011'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'jobs',
		sa.Column('id', sa.String(36), primary_key=True),
		sa.Column('node', sa.String(64), nullable=False),
		sa.Column('state', sa.String(16), nullable=False),
		sa.Column('priority', sa.Boolean, nullable=False),
		sa.Column('keep_running', sa.Boolean, nullable=False),
		sa.Column('seq', sa.BigInteger, nullable=False),
		sa.Column('params', sa.Text, nullable=False),
		sa.Column('info', sa.Text, nullable=False),
		sa.Column('attempts', sa.Integer, nullable=False),
		sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
		sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
		sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
		sa.Column('reason', sa.String(64), nullable=False),
		sa.Column('error', sa.Text, nullable=False),
	)
	op.create_index('ix_jobs_node', 'jobs', ['node'])
	op.create_index('ix_jobs_state', 'jobs', ['state'])
	op.create_index('ix_jobs_created_at', 'jobs', ['created_at'])
	op.create_index('ix_jobs_finished_at', 'jobs', ['finished_at'])


def downgrade() -> None:
	op.drop_table('jobs')
