"""camera health 'ended': a video file camera that played to its end (finished, not offline)

Revision ID: 0007_camera_ended
Revises: 0006_security
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_camera_ended"
down_revision: str | None = "0006_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "health_status_valid"  # named ck_cameras_health_status_valid by the naming convention


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_="check")
        batch_op.create_check_constraint(
            CONSTRAINT, "health_status IN ('unknown', 'online', 'offline', 'error', 'ended')"
        )


def downgrade() -> None:
    op.execute("UPDATE cameras SET health_status = 'offline' WHERE health_status = 'ended'")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_="check")
        batch_op.create_check_constraint(CONSTRAINT, "health_status IN ('unknown', 'online', 'offline', 'error')")
