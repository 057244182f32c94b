"""A model's default clip skip (A1111's numbering), used when a request leaves it unset; NULL = none."""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision: str | None = '0007'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('models') as batch:
		batch.add_column(sa.Column('default_clip_skip', sa.Integer, nullable=True))


def downgrade() -> None:
	with op.batch_alter_table('models') as batch:
		batch.drop_column('default_clip_skip')
