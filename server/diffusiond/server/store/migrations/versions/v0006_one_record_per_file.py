"""An image file belongs to exactly one history record: generation_images.path is unique.

Earlier versions let an imported archive name another record's file (deleting one record then deleted the
other's image). Rows that repeat a path are dropped first, keeping the oldest owner's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision: str | None = '0005'
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
	op.execute(
		sa.text(
			'DELETE FROM generation_images WHERE EXISTS ('
			'SELECT 1 FROM generation_images AS other JOIN generations AS owner ON owner.id = other.generation_id '
			'JOIN generations AS mine ON mine.id = generation_images.generation_id '
			'WHERE other.path = generation_images.path AND ('
			'owner.created_at < mine.created_at OR (owner.created_at = mine.created_at AND ('
			'other.generation_id < generation_images.generation_id OR ('
			'other.generation_id = generation_images.generation_id AND other."index" < generation_images."index")))))'
		)
	)
	op.create_index('ix_generation_images_path', 'generation_images', ['path'], unique=True)


def downgrade() -> None:
	op.drop_index('ix_generation_images_path', 'generation_images')
