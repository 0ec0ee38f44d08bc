"""Indexes for the library list (newest first) and for "is this image file still used?" checks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_projects_updated", "projects", ["updated"])
    op.create_index("ix_illustrations_image_sha256", "illustrations", ["image_sha256"])
    op.create_index("ix_source_images_image_sha256", "source_images", ["image_sha256"])


def downgrade() -> None:
    op.drop_index("ix_source_images_image_sha256", table_name="source_images")
    op.drop_index("ix_illustrations_image_sha256", table_name="illustrations")
    op.drop_index("ix_projects_updated", table_name="projects")
