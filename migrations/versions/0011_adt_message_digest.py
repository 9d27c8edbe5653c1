"""adt_messages.content_sha256: the fingerprint of an applied message, so a control id reused for a different
message is refused instead of being acknowledged as a duplicate

Revision ID: 0011_adt_message_digest
Revises: 0010_observation_quality
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_adt_message_digest"
down_revision: str | None = "0010_observation_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("adt_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adt_messages", schema=None) as batch_op:
        batch_op.drop_column("content_sha256")
