"""Records carry the daemon that ran them (generations.node), so that start-up recovery of one daemon leaves the
running records of others sharing the database alone. Older records read '' (before nodes existed).
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision: str | None = '0006'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('generations') as batch:
		batch.add_column(sa.Column('node', sa.String(64), nullable=False, server_default=''))
		batch.create_index('ix_generations_node', ['node'])


def downgrade() -> None:
	with op.batch_alter_table('generations') as batch:
		batch.drop_index('ix_generations_node')
		batch.drop_column('node')
