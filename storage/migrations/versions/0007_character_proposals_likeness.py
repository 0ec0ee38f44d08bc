"""Characters keep the pictures drawn for their reference (the proposals, so the person can take another one
later) and how alike they look across their pages (the likeness measured on the job worker).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch rebuild: a rebuilt table would lose AUTOINCREMENT (ids must never be reused).
    # Every character saved before this revision: no proposals kept, no likeness measured.
    op.add_column("characters", sa.Column("reference_proposals", sa.JSON(), nullable=True))
    op.add_column("characters", sa.Column("likeness", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("characters") as batch:
        batch.drop_column("likeness")
        batch.drop_column("reference_proposals")
