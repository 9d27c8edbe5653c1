"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mrn", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "(status = 'admitted' AND discharged_at IS NULL) OR (status = 'discharged' AND discharged_at IS NOT NULL)",
            name=op.f("ck_patients_status_matches_discharge"),
        ),
        sa.CheckConstraint("status IN ('admitted', 'discharged')", name=op.f("ck_patients_status_valid")),
        sa.CheckConstraint("length(mrn) > 0", name=op.f("ck_patients_mrn_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patients_mrn")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('nurse', 'doctor', 'admin')", name=op.f("ck_users_role_valid")),
        sa.CheckConstraint("length(username) > 0", name=op.f("ck_users_username_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "wards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_wards_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wards")),
        sa.UniqueConstraint("name", name=op.f("uq_wards_name")),
    )
    op.create_table(
        "alert_snoozes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_alert_snoozes_created_by_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_alert_snoozes_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_snoozes")),
    )
    with op.batch_alter_table("alert_snoozes", schema=None) as batch_op:
        batch_op.create_index("ix_alert_snoozes_patient_id_until", ["patient_id", "until"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_audit_events_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_events_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_events_patient_id_at", ["patient_id", "at"], unique=False)

    op.create_table(
        "beds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.CheckConstraint("length(label) > 0", name=op.f("ck_beds_label_not_empty")),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], name=op.f("fk_beds_ward_id_wards"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beds")),
        sa.UniqueConstraint("ward_id", "label", name=op.f("uq_beds_ward_id_label")),
    )
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("sample_fps", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_frame_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("health_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "health_status IN ('unknown', 'online', 'offline', 'error')", name=op.f("ck_cameras_health_status_valid")
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_cameras_name_not_empty")),
        sa.CheckConstraint("sample_fps > 0 AND sample_fps <= 60", name=op.f("ck_cameras_sample_fps_range")),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], name=op.f("fk_cameras_ward_id_wards"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
        sa.UniqueConstraint("ward_id", "name", name=op.f("uq_cameras_ward_id_name")),
    )
    op.create_table(
        "observation_minutes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_obs", sa.Integer(), nullable=False),
        sa.Column("n_angry", sa.Integer(), nullable=False),
        sa.Column("n_happy", sa.Integer(), nullable=False),
        sa.Column("n_relaxed", sa.Integer(), nullable=False),
        sa.Column("n_sad", sa.Integer(), nullable=False),
        sa.Column("mean_p_angry", sa.Float(), nullable=False),
        sa.Column("mean_p_happy", sa.Float(), nullable=False),
        sa.Column("mean_p_relaxed", sa.Float(), nullable=False),
        sa.Column("mean_p_sad", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "n_obs >= 0 AND n_angry >= 0 AND n_happy >= 0 AND n_relaxed >= 0 AND n_sad >= 0 "
            "AND n_angry + n_happy + n_relaxed + n_sad = n_obs",
            name=op.f("ck_observation_minutes_counts_consistent"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_observation_minutes_patient_id_patients"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observation_minutes")),
        sa.UniqueConstraint("patient_id", "minute", name=op.f("uq_observation_minutes_patient_id_minute")),
    )
    op.create_table(
        "rule_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_rule_overrides_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ward_id"], ["wards.id"], name=op.f("fk_rule_overrides_ward_id_wards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_overrides")),
    )
    op.create_table(
        "user_wards",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_wards_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ward_id"], ["wards.id"], name=op.f("fk_user_wards_ward_id_wards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "ward_id", name=op.f("pk_user_wards")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("camera_id", sa.Integer(), nullable=True),
        sa.Column("ward_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint(
            "(state = 'resolved') = (resolved_at IS NOT NULL)", name=op.f("ck_alerts_resolved_at_iff_resolved")
        ),
        sa.CheckConstraint(
            "kind IN ('negative_emotion', 'camera_offline', 'pipeline_stalled')", name=op.f("ck_alerts_kind_valid")
        ),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('auto', 'manual')", name=op.f("ck_alerts_resolution_valid")
        ),
        sa.CheckConstraint("state IN ('firing', 'acknowledged', 'resolved')", name=op.f("ck_alerts_state_valid")),
        sa.CheckConstraint("escalation_level >= 0", name=op.f("ck_alerts_escalation_level_non_negative")),
        sa.CheckConstraint("severity >= 0 AND severity <= 10", name=op.f("ck_alerts_severity_range")),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["users.id"], name=op.f("fk_alerts_acknowledged_by_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_alerts_camera_id_cameras"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_alerts_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name=op.f("fk_alerts_resolved_by_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], name=op.f("fk_alerts_ward_id_wards"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_ward_id_state", ["ward_id", "state"], unique=False)
        batch_op.create_index(
            "uq_alerts_open_kind_camera",
            ["kind", "camera_id"],
            unique=True,
            sqlite_where=sa.text("state <> 'resolved' AND patient_id IS NULL"),
            postgresql_where=sa.text("state <> 'resolved' AND patient_id IS NULL"),
        )
        batch_op.create_index(
            "uq_alerts_open_kind_patient",
            ["kind", "patient_id"],
            unique=True,
            sqlite_where=sa.text("state <> 'resolved'"),
            postgresql_where=sa.text("state <> 'resolved'"),
        )

    op.create_table(
        "bed_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("bed_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("end_at IS NULL OR end_at >= start_at", name=op.f("ck_bed_assignments_end_after_start")),
        sa.ForeignKeyConstraint(
            ["bed_id"], ["beds.id"], name=op.f("fk_bed_assignments_bed_id_beds"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_bed_assignments_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bed_assignments")),
    )
    with op.batch_alter_table("bed_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_bed_assignments_bed_id_start_at", ["bed_id", "start_at"], unique=False)
        batch_op.create_index(
            "uq_bed_assignments_current_bed",
            ["bed_id"],
            unique=True,
            sqlite_where=sa.text("end_at IS NULL"),
            postgresql_where=sa.text("end_at IS NULL"),
        )
        batch_op.create_index(
            "uq_bed_assignments_current_patient",
            ["patient_id"],
            unique=True,
            sqlite_where=sa.text("end_at IS NULL"),
            postgresql_where=sa.text("end_at IS NULL"),
        )

    op.create_table(
        "bed_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("bed_id", sa.Integer(), nullable=False),
        sa.Column("x0", sa.Float(), nullable=False),
        sa.Column("y0", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.CheckConstraint("x0 < x1 AND y0 < y1", name=op.f("ck_bed_zones_positive_area")),
        sa.CheckConstraint("x0 >= 0 AND y0 >= 0 AND x1 <= 1 AND y1 <= 1", name=op.f("ck_bed_zones_inside_unit_square")),
        sa.ForeignKeyConstraint(["bed_id"], ["beds.id"], name=op.f("fk_bed_zones_bed_id_beds"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_bed_zones_camera_id_cameras"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bed_zones")),
        sa.UniqueConstraint("camera_id", "bed_id", name=op.f("uq_bed_zones_camera_id_bed_id")),
    )
    op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("bed_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frame_id", sa.String(length=128), nullable=False),
        sa.Column("face_index", sa.SmallInteger(), nullable=False),
        sa.Column("box_x", sa.Float(), nullable=False),
        sa.Column("box_y", sa.Float(), nullable=False),
        sa.Column("box_w", sa.Float(), nullable=False),
        sa.Column("box_h", sa.Float(), nullable=False),
        sa.Column("p_angry", sa.Float(), nullable=False),
        sa.Column("p_happy", sa.Float(), nullable=False),
        sa.Column("p_relaxed", sa.Float(), nullable=False),
        sa.Column("p_sad", sa.Float(), nullable=False),
        sa.Column("probs7", sa.JSON(), nullable=False),
        sa.Column("label4", sa.String(length=16), nullable=False),
        sa.Column("label7", sa.String(length=16), nullable=False),
        sa.Column("confidence4", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("label4 IN ('angry', 'happy', 'relaxed', 'sad')", name=op.f("ck_observations_label4_valid")),
        sa.CheckConstraint(
            "label7 IN ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')",
            name=op.f("ck_observations_label7_valid"),
        ),
        sa.CheckConstraint("confidence4 >= 0 AND confidence4 <= 1", name=op.f("ck_observations_confidence4_range")),
        sa.CheckConstraint("face_index >= 0", name=op.f("ck_observations_face_index_non_negative")),
        sa.ForeignKeyConstraint(["bed_id"], ["beds.id"], name=op.f("fk_observations_bed_id_beds"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_observations_camera_id_cameras"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_observations_patient_id_patients"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
        sa.UniqueConstraint("frame_id", "face_index", name=op.f("uq_observations_frame_id_face_index")),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index("ix_observations_captured_at", ["captured_at"], unique=False)
        batch_op.create_index("ix_observations_patient_id_captured_at", ["patient_id", "captured_at"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "from_state IS NULL OR from_state IN ('firing', 'acknowledged', 'resolved')",
            name=op.f("ck_alert_events_from_state_valid"),
        ),
        sa.CheckConstraint(
            "to_state IN ('firing', 'acknowledged', 'resolved')", name=op.f("ck_alert_events_to_state_valid")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_alert_events_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index("ix_alert_events_alert_id_at", ["alert_id", "at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_events_alert_id_at")

    op.drop_table("alert_events")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index("ix_observations_patient_id_captured_at")
        batch_op.drop_index("ix_observations_captured_at")

    op.drop_table("observations")
    op.drop_table("bed_zones")
    with op.batch_alter_table("bed_assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_bed_assignments_current_patient",
            sqlite_where=sa.text("end_at IS NULL"),
            postgresql_where=sa.text("end_at IS NULL"),
        )
        batch_op.drop_index(
            "uq_bed_assignments_current_bed",
            sqlite_where=sa.text("end_at IS NULL"),
            postgresql_where=sa.text("end_at IS NULL"),
        )
        batch_op.drop_index("ix_bed_assignments_bed_id_start_at")

    op.drop_table("bed_assignments")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_open_kind_patient",
            sqlite_where=sa.text("state <> 'resolved'"),
            postgresql_where=sa.text("state <> 'resolved'"),
        )
        batch_op.drop_index(
            "uq_alerts_open_kind_camera",
            sqlite_where=sa.text("state <> 'resolved' AND patient_id IS NULL"),
            postgresql_where=sa.text("state <> 'resolved' AND patient_id IS NULL"),
        )
        batch_op.drop_index("ix_alerts_ward_id_state")

    op.drop_table("alerts")
    op.drop_table("user_wards")
    op.drop_table("rule_overrides")
    op.drop_table("observation_minutes")
    op.drop_table("cameras")
    op.drop_table("beds")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_patient_id_at")
        batch_op.drop_index("ix_audit_events_at")

    op.drop_table("audit_events")
    with op.batch_alter_table("alert_snoozes", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_snoozes_patient_id_until")

    op.drop_table("alert_snoozes")
    op.drop_table("wards")
    op.drop_table("users")
    op.drop_table("patients")
