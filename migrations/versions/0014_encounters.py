"""encounters: one row per hospital stay (the FHIR Encounter, with its own id and status history); patients.version
and updated_at (FHIR meta.versionId / lastUpdated); an index for keyset paging of a patient's observations

Upgrade creates ``encounters`` and gives each patient one encounter from what ``patients`` holds (the current or
last admission: in-progress from admitted_at, or finished at discharged_at; earlier admissions were not kept
apart before). ``ix_observations_patient_id_captured_at_id`` (patient, time, id) replaces the (patient, time)
index: the FHIR Observation search pages on (captured_at, id) after a cursor and reads a bounded slice.

Revision ID: 0014_encounters
Revises: 0013_alert_priority
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from areya.db.types import UTCDateTime

revision: str = "0014_encounters"
down_revision: str | None = "0013_alert_priority"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'arrived', 'in-progress', 'finished', 'cancelled', 'entered-in-error'"
CLASSES = "'IMP', 'AMB', 'EMER'"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite without type processing
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def upgrade() -> None:
    encounters = op.create_table(
        "encounters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("class_code", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=True),
        sa.Column("status_history", sa.JSON(), nullable=False),
        sa.Column("class_history", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_encounters_status_valid")),
        sa.CheckConstraint(f"class_code IN ({CLASSES})", name=op.f("ck_encounters_class_code_valid")),
        sa.CheckConstraint("end_at IS NULL OR end_at >= start_at", name=op.f("ck_encounters_end_after_start")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_encounters_version_positive")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_encounters_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
    )
    op.create_index("ix_encounters_patient_id_start_at", "encounters", ["patient_id", "start_at"])
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("updated_at", UTCDateTime(), nullable=True))
    patients = sa.table(
        "patients",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("admitted_at", UTCDateTime()),
        sa.column("discharged_at", UTCDateTime()),
    )
    now = datetime.now(UTC)
    rows = []
    for pid, status, admitted_at, discharged_at in op.get_bind().execute(
        sa.select(patients.c.id, patients.c.status, patients.c.admitted_at, patients.c.discharged_at)
    ):
        start, end = _iso(admitted_at), _iso(discharged_at)
        history = [{"status": "in-progress", "start": start, "end": end}]
        if status == "discharged":
            history.append({"status": "finished", "start": end, "end": end})
        rows.append(
            {
                "patient_id": pid,
                "class_code": "IMP",
                "status": "in-progress" if status == "admitted" else "finished",
                "start_at": admitted_at,
                "end_at": discharged_at if status == "discharged" else None,
                "status_history": history,
                "class_history": [{"class": "IMP", "start": start, "end": end}],
                "version": 1,
                "updated_at": now,
            }
        )
    if rows:
        op.bulk_insert(encounters, rows)
    op.create_index("ix_observations_patient_id_captured_at_id", "observations", ["patient_id", "captured_at", "id"])
    op.drop_index("ix_observations_patient_id_captured_at", table_name="observations")


def downgrade() -> None:
    op.create_index("ix_observations_patient_id_captured_at", "observations", ["patient_id", "captured_at"])
    op.drop_index("ix_observations_patient_id_captured_at_id", table_name="observations")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("version")
    op.drop_index("ix_encounters_patient_id_start_at", table_name="encounters")
    op.drop_table("encounters")
