"""Ward scoping: nurses and doctors reach only the wards they cover (admins reach all)."""

from __future__ import annotations

from typing import Any

from flask import abort
from sqlalchemy import ColumnElement, Select, case, select
from sqlalchemy.orm import Session

from areya.db.models import Alert, Bed, BedAssignment, Patient, Ward
from areya.webapp.services import db, require_user, services, user_ward_ids

MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL: a larger number is simply not found


def parse_id(text: str | None) -> int | None:
    """A positive database id from a query string value, or None."""
    if not text or not (text.isascii() and text.isdigit()) or len(text) > 10:  # int("²") fails
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def _patient_ward(patient_id: Any) -> Select:
    """The ward of the patient's current bed, else of the last bed they were in (no row if never in a bed);
    ``patient_id`` an id or a column (a correlated subquery)."""
    return (
        select(Bed.ward_id)
        .join(BedAssignment, BedAssignment.bed_id == Bed.id)
        .where(BedAssignment.patient_id == patient_id)
        .order_by(BedAssignment.end_at.is_(None).desc(), BedAssignment.start_at.desc(), BedAssignment.id.desc())
        .limit(1)
    )


def patient_ward_id(session: Session, patient_id: int) -> int | None:
    """The ward of the patient's current bed, else of the last bed they were in (None if never in a bed)."""
    return session.scalar(_patient_ward(patient_id))


def ward_patient_ids(session: Session, ward_id: int) -> list[int]:
    """The patients in a bed of the ward now."""
    return list(
        session.scalars(
            select(BedAssignment.patient_id)
            .join(Bed, Bed.id == BedAssignment.bed_id)
            .where(Bed.ward_id == ward_id, BedAssignment.end_at.is_(None))
        )
    )


def require_ward(ward_id: int) -> Ward:
    ward = db().get(Ward, ward_id)
    if ward is None:
        abort(404, description=f"no ward {ward_id}")
    if ward.id not in user_ward_ids():
        abort(403, description="you do not cover this ward")
    return ward


def require_patient(patient_id: int) -> Patient:
    patient = db().get(Patient, patient_id)
    if patient is None:
        abort(404, description=f"no patient {patient_id}")
    if require_user().role != "admin":
        ward_id = patient_ward_id(db(), patient.id)
        if ward_id is None or ward_id not in user_ward_ids():
            abort(403, description="this patient is not in a ward you cover")
    return patient


def alert_scope_ward() -> ColumnElement[int | None]:
    """SQL for :func:`alert_scope_ward_id`, to filter alert lists in the query: a patient's alert is in its
    patient's current (else last) ward, a camera or pipeline alert in its own ward."""
    patient_ward = _patient_ward(Alert.patient_id).correlate(Alert).scalar_subquery()
    return case((Alert.patient_id.is_(None), Alert.ward_id), else_=patient_ward)


def alert_scope_ward_id(session: Session, alert: Alert) -> int | None:
    """The ward whose staff may see and handle an alert: a patient's alert follows the patient (their current
    ward, else their last one), whatever ward it was raised in; a camera or pipeline alert stays with its ward."""
    if alert.patient_id is not None:
        return patient_ward_id(session, alert.patient_id)
    return alert.ward_id


def require_alert(alert_id: int) -> Alert:
    alert = db().get(Alert, alert_id)
    if alert is None:
        abort(404, description=f"no alert {alert_id}")
    if require_user().role != "admin":
        ward_id = alert_scope_ward_id(db(), alert)
        if ward_id is None or ward_id not in user_ward_ids():
            abort(403, description="this alert is not in a ward you cover")
    return alert


def require_alert_action(alert_id: int, action: str) -> Alert:
    """:func:`require_alert`, and 403 before any input is read when the deployment's policy (settings
    ``acknowledge_roles`` / ``resolve_roles``) does not let this role ``action`` this kind of alert; the lifecycle
    checks it again when the action is applied."""
    from areya.alerts.lifecycle import PATIENT_KINDS, not_allowed

    alert = require_alert(alert_id)
    group = "patient" if alert.kind in PATIENT_KINDS else "operational"
    role = require_user().role
    if role not in services().alert_policy().roles(action, group):
        abort(403, description=not_allowed(role, action, alert.kind))
    return alert
