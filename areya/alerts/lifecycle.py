"""Alert lifecycle: firing -> acknowledged -> resolved, escalation, snoozes — the one implementation used by
the scheduler, the CLI and the web app.

Every transition writes an :class:`~areya.db.models.AlertEvent` (from/to state, who, when, note); user actions
are audited too.  Like the admin operations, these functions flush but never commit: the caller owns the
transaction.  Each transition also queues an :class:`~areya.notify.events.AlertNotice` on the session;
after the commit the caller hands ``take_notices(session)`` to a :class:`~areya.notify.dispatch.Notifier`
(or to :func:`areya.notify.events.publish_events`), so nothing is announced for a rolled-back change.

Permissions (``actor.user_id`` set; a CLI/system actor without a user id is an operator and may do all):
patient alerts are acknowledged and resolved by doctors, snoozed by doctors and nurses; operational alerts
(camera offline, pipeline stalled) by nurses, doctors and admins.  Doctors and nurses act only on the wards
they cover.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from areya.admin.audit import SYSTEM, Actor, record
from areya.alerts.errors import Conflict, Forbidden, Invalid, NotFound
from areya.alerts.rules import SEVERITY, escalated_severity
from areya.db.models import (
    ALERT_KINDS,
    ALERT_OPEN_STATES,
    Alert,
    AlertEvent,
    AlertSnooze,
    Bed,
    BedAssignment,
    Patient,
    User,
    UserWard,
)
from areya.db.types import utcnow
from areya.notify.events import AlertNotice

NOTICES_KEY = "areya.alert_notices"
PATIENT_KINDS: frozenset[str] = frozenset({"negative_emotion"})
MAX_SNOOZE = timedelta(days=7)
MAX_NOTE = 2000

# action -> kind group -> roles allowed
_ROLES: dict[str, dict[str, frozenset[str]]] = {
    "acknowledge": {"patient": frozenset({"doctor"}), "operational": frozenset({"nurse", "doctor", "admin"})},
    "resolve": {"patient": frozenset({"doctor"}), "operational": frozenset({"nurse", "doctor", "admin"})},
    "snooze": {"patient": frozenset({"doctor", "nurse"})},
}


# --------------------------------------------------------------------------- notices


def pending_notices(session: Session) -> list[AlertNotice]:
    """Notices queued on this session by transitions not yet announced."""
    return session.info.setdefault(NOTICES_KEY, [])


def take_notices(session: Session) -> list[AlertNotice]:
    """Remove and return the queued notices (call after the commit)."""
    return session.info.pop(NOTICES_KEY, [])


def _queue(session: Session, kind: str, alert: Alert, at: datetime, note: str | None = None) -> AlertNotice:
    notice = AlertNotice(
        type=kind,
        alert_id=alert.id,
        ward_id=alert.ward_id,
        patient_id=alert.patient_id,
        kind=alert.kind,
        severity=alert.severity,
        state=alert.state,
        at=at,
        camera_id=alert.camera_id,
        note=note,
    )
    pending_notices(session).append(notice)
    return notice


# --------------------------------------------------------------------------- helpers


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise Invalid("time must be timezone-aware")
    return now


def _clean_note(note: str | None, *, required: bool = False, what: str = "note") -> str | None:
    text = (note or "").strip()
    if not text:
        if required:
            raise Invalid(f"a {what} is required")
        return None
    if len(text) > MAX_NOTE:
        raise Invalid(f"the {what} must be at most {MAX_NOTE} characters")
    return text


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id) if isinstance(alert_id, int) and not isinstance(alert_id, bool) else None
    if alert is None:
        raise NotFound(f"unknown alert {alert_id!r}")
    return alert


def patient_ward_id(session: Session, patient_id: int) -> int | None:
    """The ward of the patient's current bed (None without a bed)."""
    return session.scalar(
        select(Bed.ward_id)
        .join(BedAssignment, BedAssignment.bed_id == Bed.id)
        .where(BedAssignment.patient_id == patient_id, BedAssignment.end_at.is_(None))
    )


def _authorize(session: Session, actor: Actor, action: str, kind: str, ward_id: int | None) -> None:
    if actor.user_id is None:
        return  # operator (CLI) or the scheduler itself
    user = session.get(User, actor.user_id)
    if user is None or not user.active:
        raise Forbidden("unknown or deactivated user")
    group = "patient" if kind in PATIENT_KINDS else "operational"
    allowed = _ROLES[action].get(group, frozenset())
    if user.role not in allowed:
        raise Forbidden(f"a {user.role} may not {action} {kind.replace('_', ' ')} alerts")
    if user.role != "admin" and ward_id is not None:
        covers = session.scalar(
            select(exists().where(UserWard.user_id == user.id, UserWard.ward_id == ward_id))
        )
        if not covers:
            raise Forbidden(f"user {user.username} does not cover this alert's ward")


def _event(session: Session, alert: Alert, at: datetime, from_state: str | None, to_state: str,
           actor: Actor = SYSTEM, note: str | None = None) -> AlertEvent:
    event = AlertEvent(alert_id=alert.id, at=at, from_state=from_state, to_state=to_state,
                       user_id=actor.user_id, note=note)
    session.add(event)
    return event


# --------------------------------------------------------------------------- transitions


def open_alert(
    session: Session,
    kind: str,
    *,
    now: datetime | None = None,
    patient_id: int | None = None,
    ward_id: int | None = None,
    camera_id: int | None = None,
    severity: int | None = None,
    evidence: dict | None = None,
    note: str | None = None,
) -> Alert:
    """Open a firing alert (raises Conflict if the same kind is already open for that patient / camera)."""
    if kind not in ALERT_KINDS:
        raise Invalid(f"unknown alert kind {kind!r}")
    if kind in PATIENT_KINDS and patient_id is None:
        raise Invalid(f"a {kind} alert needs a patient")
    now = _now(now)
    alert = Alert(kind=kind, severity=severity if severity is not None else SEVERITY.get(kind, 1), state="firing",
                  patient_id=patient_id, camera_id=camera_id, ward_id=ward_id, opened_at=now, last_notified_at=now,
                  evidence=evidence, escalation_level=0)
    try:
        with session.begin_nested():  # a concurrent duplicate (partial unique index) only undoes this alert
            session.add(alert)
            session.flush()
    except IntegrityError:
        target = f"patient {patient_id}" if patient_id is not None else f"camera {camera_id}"
        raise Conflict(f"a {kind} alert is already open for {target}") from None
    _event(session, alert, now, None, "firing", note=note)
    session.flush()
    _queue(session, "alert.opened", alert, now, note)
    return alert


def acknowledge_alert(
    session: Session, alert_id: int, *, actor: Actor = SYSTEM, note: str | None = None, now: datetime | None = None
) -> Alert:
    """firing -> acknowledged (stops escalation), by whom, when, optional note; audited."""
    alert = get_alert(session, alert_id)
    _authorize(session, actor, "acknowledge", alert.kind, alert.ward_id)
    note = _clean_note(note)
    now = max(_now(now), alert.opened_at)  # another host's clock slightly behind: history stays in order
    if alert.state != "firing":
        raise Conflict(f"alert {alert.id} is {alert.state}, not firing")
    _event(session, alert, now, alert.state, "acknowledged", actor, note)
    alert.state = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = actor.user_id
    if note:
        alert.note = note
    session.flush()
    record(session, actor, "alert.acknowledge", patient_id=alert.patient_id, target=f"alert:{alert.id}",
           detail={"note": note})
    _queue(session, "alert.acknowledged", alert, now, note)
    return alert


def resolve_alert(
    session: Session,
    alert_id: int,
    *,
    actor: Actor = SYSTEM,
    note: str | None = None,
    now: datetime | None = None,
    require_note: bool = True,
) -> Alert:
    """firing/acknowledged -> resolved manually, with a note (required by default); audited."""
    alert = get_alert(session, alert_id)
    _authorize(session, actor, "resolve", alert.kind, alert.ward_id)
    note = _clean_note(note, required=require_note)
    now = max(_now(now), alert.opened_at)
    if alert.state not in ALERT_OPEN_STATES:
        raise Conflict(f"alert {alert.id} is already resolved")
    _close(session, alert, now, actor, note, "manual")
    record(session, actor, "alert.resolve", patient_id=alert.patient_id, target=f"alert:{alert.id}",
           detail={"note": note})
    return alert


def auto_resolve(session: Session, alert: Alert, *, now: datetime, note: str) -> Alert:
    """Resolved by the rule (no user)."""
    if alert.state not in ALERT_OPEN_STATES:
        return alert
    _close(session, alert, now, SYSTEM, note, "auto")
    return alert


def _close(session: Session, alert: Alert, now: datetime, actor: Actor, note: str | None, resolution: str) -> None:
    now = max(now, alert.opened_at)
    _event(session, alert, now, alert.state, "resolved", actor, note)
    alert.state = "resolved"
    alert.resolved_at = now
    alert.resolved_by = actor.user_id
    alert.resolution = resolution
    if note:
        alert.note = note
    session.flush()
    _queue(session, "alert.resolved", alert, now, note)


def escalate_alert(session: Session, alert: Alert, *, now: datetime) -> Alert:
    """Severity + 1 (capped), escalation level + 1, re-notified now; recorded as a firing -> firing event."""
    if alert.state != "firing":
        raise Conflict(f"alert {alert.id} is {alert.state}: only firing alerts escalate")
    alert.severity = escalated_severity(alert.severity)
    alert.escalation_level += 1
    alert.last_notified_at = now
    note = f"escalated: not acknowledged (level {alert.escalation_level}, severity {alert.severity})"
    _event(session, alert, now, "firing", "firing", note=note)
    session.flush()
    _queue(session, "alert.escalated", alert, now, note)
    return alert


# --------------------------------------------------------------------------- snoozes


def active_snooze(session: Session, patient_id: int, now: datetime | None = None) -> AlertSnooze | None:
    now = _now(now)
    return session.scalar(
        select(AlertSnooze)
        .where(AlertSnooze.patient_id == patient_id, AlertSnooze.until > now)
        .order_by(AlertSnooze.until.desc())
        .limit(1)
    )


def snooze_patient(
    session: Session,
    patient_id: int,
    *,
    until: datetime,
    reason: str,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> AlertSnooze:
    """No new negative-emotion alerts (and no escalation) for the patient until ``until``; reason required."""
    now = _now(now)
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"unknown patient id {patient_id}")
    if patient.status != "admitted":
        raise Conflict(f"patient {patient.mrn} is discharged")
    ward_id = patient_ward_id(session, patient.id)
    _authorize(session, actor, "snooze", "negative_emotion", ward_id)
    reason_text = _clean_note(reason, required=True, what="reason")
    if until.tzinfo is None:
        raise Invalid("snooze expiry must be timezone-aware")
    if until <= now:
        raise Invalid("snooze expiry must be in the future")
    if until - now > MAX_SNOOZE:
        raise Invalid(f"a snooze lasts at most {MAX_SNOOZE.days} days")
    snooze = AlertSnooze(patient_id=patient.id, until=until, reason=reason_text, created_by=actor.user_id,
                         created_at=now)
    session.add(snooze)
    session.flush()
    record(session, actor, "alert.snooze", patient_id=patient.id, target=f"patient:{patient.id}",
           detail={"until": until.isoformat(), "reason": reason_text})
    open_alert_row = session.scalar(
        select(Alert).where(Alert.patient_id == patient.id, Alert.kind == "negative_emotion",
                            Alert.state.in_(ALERT_OPEN_STATES))
    )
    notice = AlertNotice(
        type="alert.snoozed",
        alert_id=open_alert_row.id if open_alert_row else None,
        ward_id=open_alert_row.ward_id if open_alert_row else ward_id,
        patient_id=patient.id,
        kind="negative_emotion",
        severity=open_alert_row.severity if open_alert_row else None,
        state=open_alert_row.state if open_alert_row else None,
        at=now,
        note=f"snoozed until {until.isoformat()}: {reason_text}",
    )
    pending_notices(session).append(notice)
    return snooze


def cancel_snoozes(session: Session, patient_id: int, *, actor: Actor = SYSTEM, now: datetime | None = None) -> int:
    """End the patient's active snoozes now; returns how many."""
    now = _now(now)
    _authorize(session, actor, "snooze", "negative_emotion", patient_ward_id(session, patient_id))
    rows = session.scalars(
        select(AlertSnooze).where(AlertSnooze.patient_id == patient_id, AlertSnooze.until > now)
    ).all()
    for row in rows:
        row.until = max(now, row.created_at)
    session.flush()
    record(session, actor, "alert.unsnooze", patient_id=patient_id, target=f"patient:{patient_id}",
           detail={"snoozes": len(rows)})
    return len(rows)


# --------------------------------------------------------------------------- reading


def alert_history(session: Session, alert_id: int) -> list[AlertEvent]:
    get_alert(session, alert_id)
    return list(
        session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.at,
                                                                                           AlertEvent.id))
    )


def list_alerts(
    session: Session,
    *,
    ward_id: int | None = None,
    open_only: bool = True,
    kinds: tuple[str, ...] | None = None,
    limit: int = 200,
) -> list[Alert]:
    """Alerts, newest first (open ones only by default)."""
    query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(max(1, min(limit, 10_000)))
    if open_only:
        query = query.where(Alert.state.in_(ALERT_OPEN_STATES))
    if ward_id is not None:
        query = query.where(Alert.ward_id == ward_id)
    if kinds:
        query = query.where(Alert.kind.in_(kinds))
    return list(session.scalars(query))
