"""Jobs accepted by a daemon that lacks their model, for the nodes that have it (cluster/forward.py): a request the
node that claims such a job finds wrong for the model ends the job, where any other job is left to the others.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision: str | None = '0014'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('jobs') as batch:
		batch.add_column(sa.Column('forwarded', sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
	with op.batch_alter_table('jobs') as batch:
		batch.drop_column('forwarded')
