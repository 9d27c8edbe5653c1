"""alerts.finding: what the clinician who resolved a patient alert by hand found (distress seen, no distress seen)

Nullable, no default: alerts resolved before keep no finding ("not said"). The alert rule holds a longer cool-down
after a "no distress seen" finding (``negative_no_distress_cooldown_s``).

Revision ID: 0016_alert_finding
Revises: 0015_bed_zone_head
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_alert_finding"
down_revision: str | None = "0015_bed_zone_head"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finding", sa.String(length=24), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_alerts_finding_valid"), "finding IS NULL OR finding IN ('distress_seen', 'no_distress_seen')"
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_alerts_finding_valid"), type_="check")
        batch_op.drop_column("finding")
