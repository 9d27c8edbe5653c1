"""bed_zones.head_x0/y0/x1/y1: the head-of-bed (pillow) region drawn inside a bed zone, nullable (NULL: the default)

Revision ID: 0015_bed_zone_head
Revises: 0014_encounters
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_bed_zone_head"
down_revision: str | None = "0014_encounters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("head_x0", "head_y0", "head_x1", "head_y1")


def upgrade() -> None:
    # nullable, no default: existing zones keep the default pillow region (the top of the zone)
    with op.batch_alter_table("bed_zones", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bed_zones", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
