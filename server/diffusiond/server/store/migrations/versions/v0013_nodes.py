"""Nodes: each daemon on the database, with a lease its heartbeat renews (cluster/heartbeat.py).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision: str | None = '0012'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.create_table(
		'nodes',
		sa.Column('id', sa.String(64), primary_key=True),
		sa.Column('address', sa.String(512), nullable=False),
		sa.Column('device', sa.String(256), nullable=False),
		sa.Column('epoch', sa.Integer, nullable=False),
		sa.Column('state', sa.String(16), nullable=False),
		sa.Column('queue_depth', sa.Integer, nullable=False),
		sa.Column('busy', sa.Boolean, nullable=False),
		sa.Column('loaded', sa.JSON, nullable=False),
		sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
		sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
	)
	op.create_index('ix_nodes_heartbeat_at', 'nodes', ['heartbeat_at'])


def downgrade() -> None:
	op.drop_table('nodes')
