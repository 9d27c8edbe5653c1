"""observations.quality: the face quality of each observation (the chance its 4-class answer is right), nullable

Revision ID: 0010_observation_quality
Revises: 0009_camera_detector_options
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_observation_quality"
down_revision: str | None = "0009_camera_detector_options"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable, no default and no check: adding it rewrites nothing, however many observations there are
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quality", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_column("quality")
