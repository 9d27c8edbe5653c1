"""webhook targets masked: the outbox and the audit log no longer keep a webhook URL's path and query

Data only. Earlier versions stored a webhook delivery's target with only its password hidden, so a receiver's
token in the path or query (``https://hooks.example/services/T0/B0/XXXX``, ``...?token=...``) was kept in clear in
``notification_outbox.target`` and in ``notify.failed`` audit rows, and shown on /ops and by ``areya alerts
outbox``. Upgrade masks them as new rows are (``areya.config.mask_url_secrets``: ``https://hooks.example/...``);
the real URL stays in the settings only. Downgrade cannot bring the hidden parts back (nothing to do).

Revision ID: 0012_mask_webhook_targets
Revises: 0011_adt_message_digest
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from areya.config import mask_url_secrets

revision: str = "0012_mask_webhook_targets"
down_revision: str | None = "0011_adt_message_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

outbox = sa.table(
    "notification_outbox", sa.column("id", sa.Integer), sa.column("channel", sa.String), sa.column("target", sa.Text)
)
audit = sa.table(
    "audit_events", sa.column("id", sa.Integer), sa.column("action", sa.String), sa.column("target", sa.String)
)
PREFIX = "webhook:"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.target).where(outbox.c.channel == "webhook")).all()
    for row_id, target in rows:
        masked = mask_url_secrets(target) if target else target
        if masked != target:
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(target=masked))
    rows = conn.execute(
        sa.select(audit.c.id, audit.c.target).where(audit.c.action == "notify.failed", audit.c.target.like("webhook:%"))
    ).all()
    for row_id, target in rows:
        masked = PREFIX + mask_url_secrets(target[len(PREFIX) :])
        if masked != target:
            conn.execute(audit.update().where(audit.c.id == row_id).values(target=masked))


def downgrade() -> None:
    pass  # the hidden parts are gone for good (the settings hold the URLs)
