"""Projects keep the settings their story was written with (images-to-story: seed, tone, age, hints, models).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: a story typed by hand (or saved before this revision); nothing was generated to reproduce.
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("story_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("story_settings")
