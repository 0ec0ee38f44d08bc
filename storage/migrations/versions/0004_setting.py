"""Projects keep where and when their story happens (added to every picture's prompt) and a dedication
(printed after the cover).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "": no setting given (every story saved before this revision); the prompts stay as they were.
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("setting", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("dedication", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("dedication")
        batch.drop_column("setting")
