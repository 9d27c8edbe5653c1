"""Alert lifecycle shared with the web app: acknowledge / resolve with who, when, note, history, audit;
permissions; snooze validation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from alerts_helpers import T0, Hospital
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.alerts import (
    acknowledge_alert,
    active_snooze,
    alert_history,
    cancel_snoozes,
    list_alerts,
    open_alert,
    resolve_alert,
    snooze_patient,
    take_notices,
)
from areya.alerts.errors import Conflict, Forbidden, Invalid, NotFound
from areya.alerts.lifecycle import AlertPolicy
from areya.audit import Actor
from areya.db.models import Alert, AuditEvent

pytestmark = pytest.mark.postgres


@pytest.fixture
def alert_id(hospital: Hospital, session_factory: Callable[[], Session]) -> int:
    with session_factory() as s, s.begin():
        alert = open_alert(
            s,
            "negative_emotion",
            now=T0,
            patient_id=hospital.patients[0],
            ward_id=hospital.ward_id,
            evidence={"share": 0.8},
        )
        notices = take_notices(s)
        assert [n.type for n in notices] == ["alert.opened"]
        return alert.id


def test_acknowledge_then_resolve_with_notes_and_history(
    alert_id: int, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    doctor = Actor(hospital.users["dr-a"], "dr-a")
    with session_factory() as s, s.begin():
        acknowledge_alert(s, alert_id, actor=doctor, note="  on my way ", now=T0 + timedelta(minutes=2))
        notices = take_notices(s)
    assert [(n.type, n.state, n.alert_id) for n in notices] == [("alert.acknowledged", "acknowledged", alert_id)]
    with session_factory() as s, s.begin():
        resolve_alert(s, alert_id, actor=doctor, note="pain treated, patient calm", now=T0 + timedelta(minutes=20))
        assert [n.type for n in take_notices(s)] == ["alert.resolved"]
    with session_factory() as s:
        alert = s.get(Alert, alert_id)
        assert (alert.state, alert.resolution, alert.acknowledged_by, alert.resolved_by) == (
            "resolved",
            "manual",
            hospital.users["dr-a"],
            hospital.users["dr-a"],
        )
        assert alert.acknowledged_at == T0 + timedelta(minutes=2) and alert.resolved_at == T0 + timedelta(minutes=20)
        history = [(e.from_state, e.to_state, e.user_id, e.note, e.at) for e in alert_history(s, alert_id)]
        assert history == [
            (None, "firing", None, None, T0),
            ("firing", "acknowledged", hospital.users["dr-a"], "on my way", T0 + timedelta(minutes=2)),
            (
                "acknowledged",
                "resolved",
                hospital.users["dr-a"],
                "pain treated, patient calm",
                T0 + timedelta(minutes=20),
            ),
        ]
        audit = s.scalars(
            select(AuditEvent.action).where(AuditEvent.target == f"alert:{alert_id}").order_by(AuditEvent.id)
        ).all()
        assert audit == ["alert.acknowledge", "alert.resolve"]
        assert list_alerts(s) == [] and [a.id for a in list_alerts(s, open_only=False)] == [alert_id]


DOCTORS_ONLY = AlertPolicy(acknowledge_roles=frozenset({"doctor"}))


def test_refused_transitions_change_nothing(
    alert_id: int, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    u = hospital.users
    cases = [
        (
            lambda s: acknowledge_alert(s, alert_id, actor=Actor(u["nurse-a"]), policy=DOCTORS_ONLY),
            Forbidden,
            "nurse may not",
        ),
        (lambda s: resolve_alert(s, alert_id, actor=Actor(u["nurse-a"]), note="calm"), Forbidden, "nurse may not"),
        (lambda s: acknowledge_alert(s, alert_id, actor=Actor(u["dr-b"])), Forbidden, "does not cover"),
        (lambda s: acknowledge_alert(s, alert_id, actor=Actor(u["admin"])), Forbidden, "admin may not"),
        (lambda s: acknowledge_alert(s, 99999), NotFound, "unknown alert"),
        (lambda s: resolve_alert(s, alert_id, actor=Actor(u["dr-a"]), note="  "), Invalid, "note is required"),
        (lambda s: resolve_alert(s, alert_id, actor=Actor(u["dr-a"]), note="x" * 2001), Invalid, "at most"),
    ]
    for action, error, message in cases:
        with session_factory() as s, pytest.raises(error, match=message), s.begin():
            action(s)
    with session_factory() as s:
        alert = s.get(Alert, alert_id)
        assert alert.state == "firing" and len(alert_history(s, alert_id)) == 1
    with session_factory() as s, s.begin():
        resolve_alert(s, alert_id, note="false alarm: patient was yawning")
    for action in (lambda s: acknowledge_alert(s, alert_id), lambda s: resolve_alert(s, alert_id, note="again")):
        with session_factory() as s, pytest.raises(Conflict), s.begin():
            action(s)


def test_operational_alerts_are_handled_by_nurses_and_admins(
    hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    with session_factory() as s, s.begin():
        alert = open_alert(s, "camera_offline", now=T0, camera_id=hospital.camera_id, ward_id=hospital.ward_id)
        with pytest.raises(Conflict, match="already open"):
            open_alert(s, "camera_offline", now=T0, camera_id=hospital.camera_id, ward_id=hospital.ward_id)
    with session_factory() as s, s.begin():
        acknowledge_alert(s, alert.id, actor=Actor(hospital.users["nurse-a"]), now=T0)
        resolve_alert(s, alert.id, actor=Actor(hospital.users["admin"]), note="cable replaced", now=T0)
    with session_factory() as s:
        assert s.get(Alert, alert.id).state == "resolved"


def test_one_open_alert_per_patient_even_if_two_writers_race(
    hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    with session_factory() as s, s.begin():
        open_alert(s, "negative_emotion", now=T0, patient_id=hospital.patients[1], ward_id=hospital.ward_id)
        with pytest.raises(Conflict):
            open_alert(s, "negative_emotion", now=T0, patient_id=hospital.patients[1], ward_id=hospital.ward_id)
        assert len(take_notices(s)) == 1  # the refused one announced nothing


def test_snooze_rules(hospital: Hospital, session_factory: Callable[[], Session]) -> None:
    u, p = hospital.users, hospital.patients[0]
    until = T0 + timedelta(hours=2)
    refused = [
        (dict(actor=Actor(u["admin"]), reason="r"), Forbidden),
        (dict(actor=Actor(u["dr-b"]), reason="r"), Forbidden),
        (dict(actor=Actor(u["nurse-a"]), reason=" "), Invalid),
        (dict(actor=Actor(u["nurse-a"]), reason="r", until=T0 - timedelta(seconds=1)), Invalid),
        (dict(actor=Actor(u["nurse-a"]), reason="r", until=T0 + timedelta(days=8)), Invalid),
    ]
    for kwargs, error in refused:
        kwargs.setdefault("until", until)
        with session_factory() as s, pytest.raises(error), s.begin():
            snooze_patient(s, p, now=T0, **kwargs)
    with session_factory() as s, pytest.raises(NotFound), s.begin():
        snooze_patient(s, 99999, until=until, reason="r", now=T0)
    with session_factory() as s, s.begin():
        snooze = snooze_patient(s, p, until=until, reason="post-op, expected", actor=Actor(u["nurse-a"]), now=T0)
        assert snooze.created_by == u["nurse-a"]
    with session_factory() as s:
        assert active_snooze(s, p, T0 + timedelta(hours=1)) is not None
        assert active_snooze(s, p, until) is None
    with session_factory() as s, s.begin():
        assert cancel_snoozes(s, p, actor=Actor(u["dr-a"]), now=T0 + timedelta(minutes=5)) == 1
    with session_factory() as s:
        assert active_snooze(s, p, T0 + timedelta(minutes=6)) is None
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == p)).all()
        assert actions == ["alert.snooze", "alert.unsnooze"]
