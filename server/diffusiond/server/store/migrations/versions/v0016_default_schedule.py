"""A model's default schedule (A1111's schedule type: SGM Uniform for a Lightning checkpoint…) and speed options
(DeepCache interval, ToMe ratio, fast decode), beside its default sampler, steps and CFG.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision: str | None = '0015'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('models') as batch:
		batch.add_column(sa.Column('default_schedule', sa.String(32), nullable=True))
		batch.add_column(sa.Column('default_deep_cache', sa.Integer, nullable=True))
		batch.add_column(sa.Column('default_token_merging', sa.Float, nullable=True))
		batch.add_column(sa.Column('default_fast_decode', sa.Boolean, nullable=True))


def downgrade() -> None:
	with op.batch_alter_table('models') as batch:
		batch.drop_column('default_fast_decode')
		batch.drop_column('default_token_merging')
		batch.drop_column('default_deep_cache')
		batch.drop_column('default_schedule')
