"""LoRA recommendations: each LoRA's text embedding, kept with the catalog; a note on each LoRA.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision: str | None = '0016'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	with op.batch_alter_table('loras') as batch:
		batch.add_column(sa.Column('note', sa.Text, nullable=False, server_default=''))
	op.create_table(
		'lora_vectors',
		sa.Column('lora_id', sa.String(32), primary_key=True),
		sa.Column('embedder', sa.String(64), nullable=False),
		sa.Column('text_hash', sa.String(64), nullable=False),
		sa.Column('vector', sa.LargeBinary, nullable=False),
	)


def downgrade() -> None:
	op.drop_table('lora_vectors')
	with op.batch_alter_table('loras') as batch:
		batch.drop_column('note')
