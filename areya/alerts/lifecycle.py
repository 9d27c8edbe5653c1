"""Alert lifecycle: firing -> acknowledged -> resolved, escalation, snoozes — the one implementation used by
the scheduler, the CLI and the web app.

Every transition writes an :class:`~areya.db.models.AlertEvent` (from/to state, who, when, note); user actions
are audited too.  Like the admin operations, these functions flush but never commit: the caller owns the
transaction.  Each transition also queues an :class:`~areya.notify.events.AlertNotice` on the session;
after the commit the caller hands ``take_notices(session)`` to a :class:`~areya.notify.dispatch.Notifier`
(or to :func:`areya.notify.events.publish_events`), so nothing is announced for a rolled-back change.

Every notice is also written to the notification outbox (:func:`areya.notify.outbox.add_event`) in the same
transaction, so webhooks and e-mail survive a crash between the commit and the delivery.

Permissions (``actor.user_id`` set; a CLI/system actor without a user id is an operator and may do all):
patient alerts are acknowledged by the roles of the deployment's policy (:class:`AlertPolicy`, settings
``acknowledge_roles``, default nurses and doctors) and resolved by ``resolve_roles`` (default doctors), snoozed
by doctors and nurses; operational alerts (camera offline, pipeline stalled) by nurses, doctors and admins.
Doctors and nurses act only on the wards they cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from areya.alerts.errors import Conflict, Forbidden, Invalid, NotFound
from areya.alerts.evidence import NegativeEvidence
from areya.alerts.priority import check_priority, priority_of, severity_of
from areya.audit import SYSTEM, Actor, record
from areya.db.models import (
    ALERT_KINDS,
    ALERT_OPEN_STATES,
    FINDINGS,
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
from areya.notify.outbox import add_event

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


@dataclass(frozen=True)
class AlertPolicy:
    """Who may act on patient alerts in this deployment (``acknowledge_roles`` / ``resolve_roles`` settings)."""

    acknowledge_roles: frozenset[str] = frozenset({"nurse", "doctor"})
    resolve_roles: frozenset[str] = frozenset({"doctor"})

    @classmethod
    def from_settings(cls, settings: Any) -> AlertPolicy:
        return cls(frozenset(settings.acknowledge_roles), frozenset(settings.resolve_roles))

    def roles(self, action: str, group: str) -> frozenset[str]:
        if group == "patient" and action == "acknowledge":
            return self.acknowledge_roles
        if group == "patient" and action == "resolve":
            return self.resolve_roles
        return _ROLES[action].get(group, frozenset())


DEFAULT_POLICY = AlertPolicy()


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
        extra=evidence_extra(alert),
    )
    announce(session, notice)
    return notice


def evidence_extra(alert: Alert) -> dict[str, Any]:
    """``{"evidence": ...}``: the alert's evidence summary (:meth:`NegativeEvidence.public`) that webhooks and
    e-mails carry, the same numbers as the inbox, the tile and the API; empty for operational alerts."""
    evidence = NegativeEvidence.from_json(alert.evidence) if alert.kind == "negative_emotion" else None
    return {"evidence": evidence.public()} if evidence is not None else {}


def announce(session: Session, notice: AlertNotice) -> None:
    """Queue the notice for pub/sub after the commit and write it to the outbox in this transaction."""
    pending_notices(session).append(notice)
    add_event(session, notice)


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


def not_allowed(role: str, action: str, kind: str) -> str:
    """``an admin may not resolve negative emotion alerts`` (the message of every refused alert action)."""
    article = "an" if role[:1].lower() in "aeiou" else "a"
    return f"{article} {role} may not {action} {kind.replace('_', ' ')} alerts"


def _authorize(
    session: Session, actor: Actor, action: str, kind: str, ward_id: int | None, policy: AlertPolicy = DEFAULT_POLICY
) -> None:
    if actor.user_id is None:
        return  # operator (CLI) or the scheduler itself
    user = session.get(User, actor.user_id)
    if user is None or not user.active:
        raise Forbidden("unknown or deactivated user")
    group = "patient" if kind in PATIENT_KINDS else "operational"
    allowed = policy.roles(action, group)
    if user.role not in allowed:
        raise Forbidden(not_allowed(user.role, action, kind))
    if user.role != "admin" and ward_id is not None:
        covers = session.scalar(select(exists().where(UserWard.user_id == user.id, UserWard.ward_id == ward_id)))
        if not covers:
            raise Forbidden(f"user {user.username} does not cover this alert's ward")


def _event(
    session: Session,
    alert: Alert,
    at: datetime,
    from_state: str | None,
    to_state: str,
    actor: Actor = SYSTEM,
    note: str | None = None,
) -> AlertEvent:
    event = AlertEvent(
        alert_id=alert.id, at=at, from_state=from_state, to_state=to_state, user_id=actor.user_id, note=note
    )
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
    priority: str | None = None,
    evidence: dict | None = None,
    note: str | None = None,
) -> Alert:
    """Open a firing alert (raises Conflict if the same kind is already open for that patient / camera) at
    ``priority`` (default: the kind's, :func:`areya.alerts.priority.priority_of`)."""
    if kind not in ALERT_KINDS:
        raise Invalid(f"unknown alert kind {kind!r}")
    try:
        level = check_priority(priority or priority_of(kind))
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if kind in PATIENT_KINDS and patient_id is None:
        raise Invalid(f"a {kind} alert needs a patient")
    now = _now(now)
    alert = Alert(
        kind=kind,
        priority=level,
        severity=severity_of(level),
        state="firing",
        patient_id=patient_id,
        camera_id=camera_id,
        ward_id=ward_id,
        opened_at=now,
        last_notified_at=now,
        evidence=evidence,
        escalation_level=0,
    )
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
    session: Session,
    alert_id: int,
    *,
    actor: Actor = SYSTEM,
    note: str | None = None,
    now: datetime | None = None,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> Alert:
    """firing -> acknowledged (stops escalation; the alert stays open until resolved), by whom, when, optional
    note; audited."""
    alert = get_alert(session, alert_id)
    _authorize(session, actor, "acknowledge", alert.kind, alert.ward_id, policy)
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
    record(
        session,
        actor,
        "alert.acknowledge",
        patient_id=alert.patient_id,
        target=f"alert:{alert.id}",
        detail={"note": note},
    )
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
    policy: AlertPolicy = DEFAULT_POLICY,
    finding: str | None = None,
) -> Alert:
    """firing/acknowledged -> resolved manually, with a note (required by default) and, for a patient alert, what
    the clinician found (``finding``: one of :data:`~areya.db.models.FINDINGS`, or None: not said; after "no
    distress seen" the rule holds a longer cool-down, :mod:`areya.alerts.rules`); audited."""
    alert = get_alert(session, alert_id)
    _authorize(session, actor, "resolve", alert.kind, alert.ward_id, policy)
    note = _clean_note(note, required=require_note)
    finding = check_finding(finding, alert.kind)
    now = max(_now(now), alert.opened_at)
    if alert.state not in ALERT_OPEN_STATES:
        raise Conflict(f"alert {alert.id} is already resolved")
    alert.finding = finding
    _close(session, alert, now, actor, note, "manual")
    detail: dict[str, Any] = {"note": note}
    if finding is not None:
        detail["finding"] = finding
    record(session, actor, "alert.resolve", patient_id=alert.patient_id, target=f"alert:{alert.id}", detail=detail)
    return alert


def check_finding(finding: str | None, kind: str) -> str | None:
    """``finding`` (blank: None) if it is one of :data:`~areya.db.models.FINDINGS` and ``kind`` is a patient
    alert; :class:`Invalid` otherwise."""
    if finding is None or not str(finding).strip():
        return None
    finding = str(finding).strip()
    if finding not in FINDINGS:
        raise Invalid(f"finding must be one of {', '.join(FINDINGS)} (or none), not {finding!r}")
    if kind != "negative_emotion":
        raise Invalid("a finding is recorded only for a patient alert")
    return finding


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
    """Escalation level + 1 (the urgency within the alert's priority, which does not change), re-notified now;
    recorded as a firing -> firing event."""
    if alert.state != "firing":
        raise Conflict(f"alert {alert.id} is {alert.state}: only firing alerts escalate")
    alert.escalation_level += 1
    alert.last_notified_at = now
    note = f"escalated: not acknowledged (reminder {alert.escalation_level}, {alert.priority} priority)"
    _event(session, alert, now, "firing", "firing", note=note)
    session.flush()
    _queue(session, "alert.escalated", alert, now, note)
    return alert


def resolve_on_discharge(session: Session, patient_id: int, *, now: datetime, actor: Actor = SYSTEM) -> list[Alert]:
    """The patient left: resolve their open alerts (resolution auto, note "patient discharged"), announced."""
    alerts = session.scalars(
        select(Alert).where(Alert.patient_id == patient_id, Alert.state.in_(ALERT_OPEN_STATES)).order_by(Alert.id)
    ).all()
    for alert in alerts:
        _close(session, alert, now, actor, "patient discharged", "auto")
    return list(alerts)


def transfer_alerts(
    session: Session, patient_id: int, *, ward_id: int | None, now: datetime, note: str, actor: Actor = SYSTEM
) -> list[Alert]:
    """The patient moved bed (maybe ward): open alerts follow them (``ward_id``) and an ``alert.transferred``
    event is recorded (a state-preserving history row) and announced for each."""
    alerts = session.scalars(
        select(Alert).where(Alert.patient_id == patient_id, Alert.state.in_(ALERT_OPEN_STATES)).order_by(Alert.id)
    ).all()
    for alert in alerts:
        at = max(now, alert.opened_at)
        alert.ward_id = ward_id
        _event(session, alert, at, alert.state, alert.state, actor, note)
        session.flush()
        _queue(session, "alert.transferred", alert, at, note)
    return list(alerts)


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
    snooze = AlertSnooze(
        patient_id=patient.id, until=until, reason=reason_text, created_by=actor.user_id, created_at=now
    )
    session.add(snooze)
    session.flush()
    record(
        session,
        actor,
        "alert.snooze",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"until": until.isoformat(), "reason": reason_text},
    )
    open_alert_row = session.scalar(
        select(Alert).where(
            Alert.patient_id == patient.id, Alert.kind == "negative_emotion", Alert.state.in_(ALERT_OPEN_STATES)
        )
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
    announce(session, notice)
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
    record(
        session,
        actor,
        "alert.unsnooze",
        patient_id=patient_id,
        target=f"patient:{patient_id}",
        detail={"snoozes": len(rows)},
    )
    return len(rows)


# --------------------------------------------------------------------------- reading


def alert_history(session: Session, alert_id: int) -> list[AlertEvent]:
    get_alert(session, alert_id)
    return list(
        session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.at, AlertEvent.id)
        )
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
