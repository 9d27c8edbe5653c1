"""camera detector_options: per-camera face detector options laid over the global ones (rotations, min face size)

Revision ID: 0009_camera_detector_options
Revises: 0008_adt
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_camera_detector_options"
down_revision: str | None = "0008_adt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detector_options", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("detector_options")
