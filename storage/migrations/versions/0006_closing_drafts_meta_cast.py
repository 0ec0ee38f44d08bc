"""Projects keep their closing words, whether pages are drawn as drafts first and how many candidates are drawn
per page (best of N); pictures keep what was learnt about them (scores, candidates, draft); characters keep a
reference picture (the cast sheet) and how it was drawn.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every story saved before this revision: the default closing words, final pictures, nothing learnt, no cast.
    # Plain ADD COLUMN, never a batch rebuild: a rebuilt table would lose AUTOINCREMENT (ids must never be reused).
    op.add_column("projects", sa.Column("closing", sa.Text(), nullable=False, server_default=""))
    op.add_column("projects", sa.Column("drafts", sa.Boolean(), nullable=False, server_default=sa.text("0")))
    op.add_column("projects", sa.Column("candidates", sa.Integer(), nullable=False, server_default=sa.text("1")))
    op.add_column("illustrations", sa.Column("meta", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.add_column("characters", sa.Column("reference_sha256", sa.String(64), nullable=True))
    op.add_column("characters", sa.Column("reference_ext", sa.String(8), nullable=True))
    op.add_column("characters", sa.Column("reference_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("characters") as batch:
        batch.drop_column("reference_settings")
        batch.drop_column("reference_ext")
        batch.drop_column("reference_sha256")
    with op.batch_alter_table("illustrations") as batch:
        batch.drop_column("meta")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("candidates")
        batch.drop_column("drafts")
        batch.drop_column("closing")
