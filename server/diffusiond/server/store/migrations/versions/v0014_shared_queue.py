"""The shared queue: which node runs a job (claimed, fenced by that node's epoch), its model for the claim's
preference, the models each node can run, and the events the daemons relay to each other (cluster/).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision: str | None = '0013'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('jobs') as batch:
		batch.add_column(sa.Column('model', sa.String(512), nullable=False, server_default=''))
		batch.add_column(sa.Column('runner', sa.String(64), nullable=False, server_default=''))
		batch.add_column(sa.Column('runner_epoch', sa.Integer, nullable=False, server_default='0'))
		batch.create_index('ix_jobs_runner', ['runner'])
	with op.batch_alter_table('nodes') as batch:
		batch.add_column(sa.Column('models', sa.JSON, nullable=False, server_default='[]'))
	op.create_table(
		'job_events',
		sa.Column('id', sa.BigInteger().with_variant(sa.Integer, 'sqlite'), primary_key=True, autoincrement=True),
		sa.Column('job_id', sa.String(36), nullable=False),
		sa.Column('body', sa.Text, nullable=False),
		sa.Column('at', sa.DateTime(timezone=True), nullable=False),
	)
	op.create_index('ix_job_events_job_id', 'job_events', ['job_id'])
	op.create_index('ix_job_events_at', 'job_events', ['at'])


def downgrade() -> None:
	op.drop_table('job_events')
	with op.batch_alter_table('nodes') as batch:
		batch.drop_column('models')
	with op.batch_alter_table('jobs') as batch:
		batch.drop_index('ix_jobs_runner')
		batch.drop_column('runner_epoch')
		batch.drop_column('runner')
		batch.drop_column('model')
