"""HL7 v2 ADT feed: applied messages by sending facility and control id (MSH-10), so a resent one is not re-applied

Revision ID: 0008_adt
Revises: 0007_camera_ended
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_adt"
down_revision: str | None = "0007_camera_ended"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "adt_messages"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sending_facility", sa.String(length=200), nullable=False),
        sa.Column("control_id", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_adt_messages_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adt_messages")),
        sa.UniqueConstraint("sending_facility", "control_id", name=op.f("uq_adt_messages_sending_facility_control_id")),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
