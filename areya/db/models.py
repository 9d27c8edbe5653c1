"""The Areya domain model (SQLAlchemy 2, typed).  Names here are a contract for every other package.

Times are timezone-aware UTC (:class:`~areya.db.types.UTCDateTime`).  Integrity rules live in the
database too (unique / partial unique indexes, CHECK constraints, RESTRICT / CASCADE foreign keys), so
that no code path can break them.  Schema changes need a new Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from areya.db.base import Base
from areya.db.secret_url import SecretUrl
from areya.db.types import UTCDateTime, utcnow
from areya.source_url import mask_source_url, validate_source_url

# BIGINT primary keys for the big tables (SQLite only autoincrements INTEGER PRIMARY KEY).
BigId = BigInteger().with_variant(Integer(), "sqlite")

ROLES: tuple[str, ...] = ("nurse", "doctor", "admin")
PATIENT_STATUSES: tuple[str, ...] = ("admitted", "discharged")
CAMERA_HEALTH: tuple[str, ...] = ("unknown", "online", "offline", "error", "ended")  # ended: a file played out
ALERT_KINDS: tuple[str, ...] = ("negative_emotion", "camera_offline", "pipeline_stalled")
ALERT_STATES: tuple[str, ...] = ("firing", "acknowledged", "resolved")
ALERT_OPEN_STATES: tuple[str, ...] = ("firing", "acknowledged")
RESOLUTIONS: tuple[str, ...] = ("auto", "manual")
# what the clinician who resolved a patient alert by hand found at the bedside (NULL: not said)
FINDINGS: tuple[str, ...] = ("distress_seen", "no_distress_seen")
# IEC 60601-1-8 alarm priorities, highest first (areya.alerts.priority), and the number APIs carried before them
ALERT_PRIORITIES: tuple[str, ...] = ("high", "medium", "low")
PRIORITY_SEVERITY: dict[str, int] = {"high": 3, "medium": 2, "low": 1}
LABELS4: tuple[str, ...] = ("angry", "happy", "relaxed", "sad")  # = areya.emotion.schemes.AREYA4_CLASSES
LABELS7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # = FER7_CLASSES
OUTBOX_CHANNELS: tuple[str, ...] = ("event", "webhook", "email")  # event: one notice, fanned out into deliveries
OUTBOX_STATUSES: tuple[str, ...] = ("pending", "delivered", "failed")
# FHIR R4 Encounter.status / Encounter.class (v3 ActCode) values a stay takes
ENCOUNTER_STATUSES: tuple[str, ...] = ("arrived", "in-progress", "finished", "cancelled", "entered-in-error")
ENCOUNTER_CLASSES: tuple[str, ...] = ("IMP", "AMB", "EMER")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --------------------------------------------------------------------------- wards, beds, patients


class Ward(Base):
    __tablename__ = "wards"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    beds: Mapped[list[Bed]] = relationship(back_populates="ward", order_by="Bed.label", passive_deletes="all")
    cameras: Mapped[list[Camera]] = relationship(back_populates="ward", order_by="Camera.name", passive_deletes="all")

    __table_args__ = (CheckConstraint("length(name) > 0", name="name_not_empty"),)

    def __repr__(self) -> str:
        return f"Ward(id={self.id}, name={self.name!r})"


class Bed(Base):
    __tablename__ = "beds"

    id: Mapped[int] = mapped_column(primary_key=True)
    ward_id: Mapped[int] = mapped_column(ForeignKey("wards.id", ondelete="RESTRICT"))
    label: Mapped[str] = mapped_column(String(50))

    ward: Mapped[Ward] = relationship(back_populates="beds")

    __table_args__ = (
        UniqueConstraint("ward_id", "label"),
        CheckConstraint("length(label) > 0", name="label_not_empty"),
    )

    def __repr__(self) -> str:
        return f"Bed(id={self.id}, ward_id={self.ward_id}, label={self.label!r})"


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="admitted")
    # changes of the row (FHIR meta.versionId / ETag) and the last one's time (meta.lastUpdated)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1", onupdate=literal_column("version + 1"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    assignments: Mapped[list[BedAssignment]] = relationship(
        back_populates="patient", order_by="BedAssignment.start_at", passive_deletes="all"
    )

    __table_args__ = (
        CheckConstraint(_in("status", PATIENT_STATUSES), name="status_valid"),
        CheckConstraint(
            "(status = 'admitted' AND discharged_at IS NULL) OR (status = 'discharged' AND discharged_at IS NOT NULL)",
            name="status_matches_discharge",
        ),
        CheckConstraint("length(mrn) > 0", name="mrn_not_empty"),
    )

    @property
    def current_assignment(self) -> BedAssignment | None:
        return next((a for a in self.assignments if a.end_at is None), None)

    def __repr__(self) -> str:  # no display name: patient data stays out of logs
        return f"Patient(id={self.id}, status={self.status!r})"


class BedAssignment(Base):
    """Bed history: one row per stay in a bed; ``end_at IS NULL`` = current."""

    __tablename__ = "bed_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id", ondelete="RESTRICT"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    patient: Mapped[Patient] = relationship(back_populates="assignments")
    bed: Mapped[Bed] = relationship()

    __table_args__ = (
        CheckConstraint("end_at IS NULL OR end_at >= start_at", name="end_after_start"),
        # a bed holds at most one patient at a time; a patient is in at most one bed at a time
        Index(
            "uq_bed_assignments_current_bed",
            "bed_id",
            unique=True,
            sqlite_where=text("end_at IS NULL"),
            postgresql_where=text("end_at IS NULL"),
        ),
        Index(
            "uq_bed_assignments_current_patient",
            "patient_id",
            unique=True,
            sqlite_where=text("end_at IS NULL"),
            postgresql_where=text("end_at IS NULL"),
        ),
        Index("ix_bed_assignments_bed_id_start_at", "bed_id", "start_at"),
    )

    def __repr__(self) -> str:
        return f"BedAssignment(id={self.id}, patient_id={self.patient_id}, bed_id={self.bed_id}, end_at={self.end_at})"


class Encounter(Base):
    """One hospital stay of a patient (an admission, or an outpatient / emergency registration), from its start
    to its discharge: the FHIR Encounter. A re-admission is a new row; a cancelled discharge (A13) reopens the
    stay; a cancelled admission (A11) ends it as ``cancelled``. ``status_history`` / ``class_history``: the
    statuses and classes it held, ``[{"status"|"class": ..., "start": iso, "end": iso | None}]``, oldest first.
    ``version`` counts its changes (FHIR meta.versionId)."""

    __tablename__ = "encounters"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    class_code: Mapped[str] = mapped_column(String(8), default="IMP")
    status: Mapped[str] = mapped_column(String(16), default="in-progress")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    class_history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("status", ENCOUNTER_STATUSES), name="status_valid"),
        CheckConstraint(_in("class_code", ENCOUNTER_CLASSES), name="class_code_valid"),
        CheckConstraint("end_at IS NULL OR end_at >= start_at", name="end_after_start"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_encounters_patient_id_start_at", "patient_id", "start_at"),
    )

    def __repr__(self) -> str:
        return f"Encounter(id={self.id}, patient_id={self.patient_id}, {self.class_code}, {self.status!r})"


# --------------------------------------------------------------------------- cameras and zones


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(primary_key=True)
    ward_id: Mapped[int] = mapped_column(ForeignKey("wards.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    source_url: Mapped[str] = mapped_column(SecretUrl())  # SECRET (encrypted at rest): print masked_url, not this
    sample_fps: Mapped[float] = mapped_column(Float, default=2.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    health_status: Mapped[str] = mapped_column(String(16), default="unknown")
    # face detector options of this camera laid over the global ones ("rotations=90,min_face_px=40"); NULL: none
    detector_options: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    ward: Mapped[Ward] = relationship(back_populates="cameras")
    zones: Mapped[list[BedZone]] = relationship(
        back_populates="camera", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("ward_id", "name"),
        CheckConstraint("sample_fps > 0 AND sample_fps <= 60", name="sample_fps_range"),
        CheckConstraint(_in("health_status", CAMERA_HEALTH), name="health_status_valid"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
    )

    @validates("source_url")
    def _check_source_url(self, _key: str, value: str) -> str:
        return validate_source_url(value)

    @property
    def masked_url(self) -> str:
        return mask_source_url(self.source_url)

    def __repr__(self) -> str:
        return f"Camera(id={self.id}, name={self.name!r}, source_url={self.masked_url!r})"


class BedZone(Base):
    """Where a bed is in a camera's image: normalized [0,1] rectangle (x0,y0)-(x1,y1)."""

    __tablename__ = "bed_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id", ondelete="CASCADE"))
    x0: Mapped[float] = mapped_column(Float)
    y0: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    # the head-of-bed (pillow) region inside the zone, normalized to the image; NULL: the default
    # (areya.detectors.roles.default_head)
    head_x0: Mapped[float | None] = mapped_column(Float, nullable=True)
    head_y0: Mapped[float | None] = mapped_column(Float, nullable=True)
    head_x1: Mapped[float | None] = mapped_column(Float, nullable=True)
    head_y1: Mapped[float | None] = mapped_column(Float, nullable=True)

    camera: Mapped[Camera] = relationship(back_populates="zones")
    bed: Mapped[Bed] = relationship()

    __table_args__ = (
        UniqueConstraint("camera_id", "bed_id"),
        CheckConstraint("x0 >= 0 AND y0 >= 0 AND x1 <= 1 AND y1 <= 1", name="inside_unit_square"),
        CheckConstraint("x0 < x1 AND y0 < y1", name="positive_area"),
    )

    @property
    def head(self) -> tuple[float, float, float, float] | None:
        """The drawn pillow region ``(x0, y0, x1, y1)``, or None (not drawn)."""
        values = (self.head_x0, self.head_y0, self.head_x1, self.head_y1)
        return None if any(v is None for v in values) else values  # type: ignore[return-value]

    def contains(self, x: float, y: float) -> bool:
        """Is the normalized point (x, y) inside the zone (edges included)?"""
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def __repr__(self) -> str:
        return f"BedZone(camera_id={self.camera_id}, bed_id={self.bed_id}, ({self.x0},{self.y0})-({self.x1},{self.y1}))"


# --------------------------------------------------------------------------- observations


class Observation(Base):
    """One classified face of one frame, assigned to the patient in the bed whose zone holds the face."""

    __tablename__ = "observations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id", ondelete="RESTRICT"))
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    frame_id: Mapped[str] = mapped_column(String(128))
    face_index: Mapped[int] = mapped_column(SmallInteger)
    box_x: Mapped[float] = mapped_column(Float)
    box_y: Mapped[float] = mapped_column(Float)
    box_w: Mapped[float] = mapped_column(Float)
    box_h: Mapped[float] = mapped_column(Float)
    p_angry: Mapped[float] = mapped_column(Float)
    p_happy: Mapped[float] = mapped_column(Float)
    p_relaxed: Mapped[float] = mapped_column(Float)
    p_sad: Mapped[float] = mapped_column(Float)
    probs7: Mapped[list[float]] = mapped_column(JSON)
    label4: Mapped[str] = mapped_column(String(16))
    label7: Mapped[str] = mapped_column(String(16))
    confidence4: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # face quality in [0, 1]: the predicted chance that the 4-class answer is right (areya.detectors.quality);
    # None: not measured (observations written before it was).  The alert rule sets aside those below
    # min_face_quality.
    quality: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("frame_id", "face_index"),  # a re-delivered frame never duplicates
        # a patient's readings in time order, ties by id: the FHIR search's keyset pages read a bounded slice
        Index("ix_observations_patient_id_captured_at_id", "patient_id", "captured_at", "id"),
        Index("ix_observations_captured_at", "captured_at"),
        CheckConstraint("face_index >= 0", name="face_index_non_negative"),
        CheckConstraint(_in("label4", LABELS4), name="label4_valid"),
        CheckConstraint(_in("label7", LABELS7), name="label7_valid"),
        CheckConstraint("confidence4 >= 0 AND confidence4 <= 1", name="confidence4_range"),
    )

    @property
    def probs4(self) -> list[float]:
        """[p_angry, p_happy, p_relaxed, p_sad] in AREYA4_CLASSES order."""
        return [self.p_angry, self.p_happy, self.p_relaxed, self.p_sad]

    def __repr__(self) -> str:
        return f"Observation(id={self.id}, frame_id={self.frame_id!r}, face_index={self.face_index}, {self.label4})"


class ObservationMinute(Base):
    """Per-patient per-minute rollup kept after raw observations pass retention."""

    __tablename__ = "observation_minutes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    minute: Mapped[datetime] = mapped_column(UTCDateTime())
    n_obs: Mapped[int] = mapped_column(Integer, default=0)
    n_angry: Mapped[int] = mapped_column(Integer, default=0)
    n_happy: Mapped[int] = mapped_column(Integer, default=0)
    n_relaxed: Mapped[int] = mapped_column(Integer, default=0)
    n_sad: Mapped[int] = mapped_column(Integer, default=0)
    mean_p_angry: Mapped[float] = mapped_column(Float, default=0.0)
    mean_p_happy: Mapped[float] = mapped_column(Float, default=0.0)
    mean_p_relaxed: Mapped[float] = mapped_column(Float, default=0.0)
    mean_p_sad: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        UniqueConstraint("patient_id", "minute"),
        CheckConstraint(
            "n_obs >= 0 AND n_angry >= 0 AND n_happy >= 0 AND n_relaxed >= 0 AND n_sad >= 0 "
            "AND n_angry + n_happy + n_relaxed + n_sad = n_obs",
            name="counts_consistent",
        ),
    )


# --------------------------------------------------------------------------- users and audit


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id (argon2-cffi)
    email: Mapped[str | None] = mapped_column(String(254))  # alert e-mails (doctors of the ward); optional
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    wards: Mapped[list[Ward]] = relationship(secondary="user_wards", order_by="Ward.name")

    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role_valid"),
        CheckConstraint("length(username) > 0", name="username_not_empty"),
    )

    def __repr__(self) -> str:
        return f"User(id={self.id}, username={self.username!r}, role={self.role!r}, active={self.active})"


class UserWard(Base):
    """Which wards a nurse or doctor covers."""

    __tablename__ = "user_wards"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ward_id: Mapped[int] = mapped_column(ForeignKey("wards.id", ondelete="CASCADE"), primary_key=True)


class ApiToken(Base):
    """A user's token for the JSON API: only the SHA-256 of the secret is stored (shown once at creation)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # first characters of the token, to recognise it in lists
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # who issued it (None: the command line); a token issued by someone else is audited with its issuer
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    __table_args__ = (
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        Index("ix_api_tokens_user_id", "user_id"),
    )

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id}, user_id={self.user_id}, prefix={self.prefix!r})"


class WebSession(Base):
    """A dashboard login: the cookie holds a random session id, this row its SHA-256. Logout deletes the row; a
    password change or deactivation deletes all of the user's rows (the session ends on its next request)."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_web_sessions_user_id", "user_id"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )

    def __repr__(self) -> str:
        return f"WebSession(user_id={self.user_id}, expires_at={self.expires_at})"


class AuditEvent(Base):
    """Who did or viewed what, when (patient data access and every change)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    target: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_patient_id_at", "patient_id", "at"),
    )

    def __repr__(self) -> str:
        return f"AuditEvent(id={self.id}, action={self.action!r}, target={self.target!r})"


# --------------------------------------------------------------------------- alerts


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # the number APIs, webhooks and e-mails carry (high 3, medium 2, low 1), written with the priority; kept for
    # them and for older readers, never changed on its own
    severity: Mapped[int] = mapped_column(SmallInteger, default=2)
    priority: Mapped[str] = mapped_column(String(8), default="medium", server_default="medium")  # high|medium|low
    state: Mapped[str] = mapped_column(String(16), default="firing")
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id", ondelete="RESTRICT"))  # NULL: system-wide
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    resolution: Mapped[str | None] = mapped_column(String(16))
    finding: Mapped[str | None] = mapped_column(String(24))  # FINDINGS: what the clinician who resolved it found
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalation_level: Mapped[int] = mapped_column(SmallInteger, default=0)

    events: Mapped[list[AlertEvent]] = relationship(
        back_populates="alert", order_by="AlertEvent.at", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind_valid"),
        CheckConstraint(_in("state", ALERT_STATES), name="state_valid"),
        CheckConstraint("resolution IS NULL OR " + _in("resolution", RESOLUTIONS), name="resolution_valid"),
        CheckConstraint("finding IS NULL OR " + _in("finding", FINDINGS), name="finding_valid"),
        CheckConstraint("severity >= 0 AND severity <= 10", name="severity_range"),
        CheckConstraint("escalation_level >= 0", name="escalation_level_non_negative"),
        CheckConstraint("(state = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_at_iff_resolved"),
        Index("ix_alerts_ward_id_state", "ward_id", "state"),
        # at most one open (not resolved) alert per (kind, patient) and per (kind, camera) for camera alerts
        Index(
            "uq_alerts_open_kind_patient",
            "kind",
            "patient_id",
            unique=True,
            sqlite_where=text("state <> 'resolved'"),
            postgresql_where=text("state <> 'resolved'"),
        ),
        Index(
            "uq_alerts_open_kind_camera",
            "kind",
            "camera_id",
            unique=True,
            sqlite_where=text("state <> 'resolved' AND patient_id IS NULL"),
            postgresql_where=text("state <> 'resolved' AND patient_id IS NULL"),
        ),
    )

    @property
    def is_open(self) -> bool:
        return self.state in ALERT_OPEN_STATES

    def __repr__(self) -> str:
        return f"Alert(id={self.id}, kind={self.kind!r}, state={self.state!r}, patient_id={self.patient_id})"


class AlertEvent(Base):
    """Alert state history (``from_state`` is NULL for the opening event)."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    note: Mapped[str | None] = mapped_column(Text)

    alert: Mapped[Alert] = relationship(back_populates="events")

    __table_args__ = (
        CheckConstraint("from_state IS NULL OR " + _in("from_state", ALERT_STATES), name="from_state_valid"),
        CheckConstraint(_in("to_state", ALERT_STATES), name="to_state_valid"),
        Index("ix_alert_events_alert_id_at", "alert_id", "at"),
    )


class AlertSnooze(Base):
    """No new negative-emotion alerts for a patient until ``until``."""

    __tablename__ = "alert_snoozes"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_alert_snoozes_patient_id_until", "patient_id", "until"),)


class RuleOverride(Base):
    """Alert rule settings overriding the global ones for a ward or a patient (JSON of setting -> value)."""

    __tablename__ = "rule_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id", ondelete="CASCADE"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class NotificationOutbox(Base):
    """Durable notifications (areya.notify.outbox): a committed alert transition writes one ``event`` row in its
    own transaction; the outbox pump fans it out into one row per delivery (``webhook`` per URL, ``email``) and
    sends those with retries and exponential backoff until delivered or failed.  ``idempotency_key`` travels in
    the payload (the same over retries and restarts) so that receivers can de-duplicate."""

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the outbox outlives nothing, blocks nothing
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    target: Mapped[str | None] = mapped_column(Text)  # masked URL or the recipients (never a secret)
    target_key: Mapped[str | None] = mapped_column(String(64))  # sha256 of the webhook URL (found in settings)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("channel", OUTBOX_CHANNELS), name="channel_valid"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status_valid"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_notification_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notification_outbox_created_at", "created_at"),
    )

    def __repr__(self) -> str:
        return (
            f"NotificationOutbox(id={self.id}, channel={self.channel!r}, event_type={self.event_type!r}, "
            f"status={self.status!r}, attempts={self.attempts})"
        )


# --------------------------------------------------------------------------- hospital integration


class AdtMessage(Base):
    """An HL7 v2 ADT message that was applied (areya.integrations.hl7), keyed by sending facility and message
    control id (MSH-10): a resent copy is acknowledged again but never applied twice."""

    __tablename__ = "adt_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sending_facility: Mapped[str] = mapped_column(String(200))
    control_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(8))  # trigger event: A01, A02, ...
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # SHA-256 of the message without MSH-7: a resend must be the same message; None: applied before it was kept
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("sending_facility", "control_id"),)

    def __repr__(self) -> str:
        return f"AdtMessage(id={self.id}, {self.sending_facility!r}/{self.control_id!r}, event={self.event!r})"


__all__ = [
    "ALERT_KINDS",
    "ALERT_OPEN_STATES",
    "ALERT_STATES",
    "CAMERA_HEALTH",
    "ENCOUNTER_CLASSES",
    "ENCOUNTER_STATUSES",
    "FINDINGS",
    "LABELS4",
    "LABELS7",
    "OUTBOX_CHANNELS",
    "OUTBOX_STATUSES",
    "PATIENT_STATUSES",
    "RESOLUTIONS",
    "ROLES",
    "AdtMessage",
    "Alert",
    "AlertEvent",
    "AlertSnooze",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Bed",
    "BedAssignment",
    "BedZone",
    "Camera",
    "Encounter",
    "NotificationOutbox",
    "Observation",
    "ObservationMinute",
    "Patient",
    "RuleOverride",
    "User",
    "UserWard",
    "Ward",
]
