"""alerts.priority: IEC 60601-1-8 alarm priority (high, medium, low) in place of a severity that climbed on escalation

Every alert kind Areya raises is medium priority (areya.alerts.priority): camera_offline and pipeline_stalled are
technical conditions, negative_emotion a patient condition. The severity column stays for the APIs, webhooks and
e-mails that carry it, now derived from the priority (medium = 2); alerts whose severity escalation had raised
are set back to it (escalation raises ``escalation_level`` only). Downgrade drops the column; severities stay 2.

Revision ID: 0013_alert_priority
Revises: 0012_mask_webhook_targets
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_alert_priority"
down_revision: str | None = "0012_mask_webhook_targets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

alerts = sa.table("alerts", sa.column("severity", sa.SmallInteger), sa.column("priority", sa.String))


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rewrite on SQLite or PostgreSQL
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.String(length=8), nullable=False, server_default="medium"))
    op.execute(alerts.update().where(alerts.c.severity != 2).values(severity=2))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("priority")
