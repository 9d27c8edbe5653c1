"""The sustained-negative-emotion rule against a real database, on an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from alerts_helpers import PROBS, T0, Hospital
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from areya.alerts.engine import AlertEngine
from areya.alerts.lifecycle import acknowledge_alert, snooze_patient, take_notices
from areya.alerts.overrides import set_rule_override
from areya.alerts.rules import RuleParams, WindowStats, evaluate_negative
from areya.config import Settings
from areya.db.models import Alert, AlertEvent, Camera

Observe = Callable[..., None]


@pytest.fixture(autouse=True)
def _cameras_disabled(hospital: Hospital, session_factory: Callable[[], Session]) -> None:
    """Camera alerts are tested elsewhere: keep them out of these reports."""
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))


@pytest.fixture
def engine_(alert_settings: Settings, session_factory: Callable[[], Session]) -> AlertEngine:
    return AlertEngine(alert_settings, session_factory)


def negative_alerts(session_factory: Callable[[], Session]) -> list[Alert]:
    with session_factory() as s:
        return list(s.scalars(select(Alert).where(Alert.kind == "negative_emotion").order_by(Alert.id)))


def calm_others(observe: Observe, start: datetime, count: int) -> None:
    observe(1, start, count, label="happy")
    observe(2, start, count, label=lambda i: "relaxed" if i % 5 else "sad")  # 20% sad: calm


def test_one_sustained_sad_patient_gets_exactly_one_alert_with_evidence(
    engine_: AlertEngine, observe: Observe, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    start = T0 - timedelta(seconds=595)
    observe(0, start, 120, label="sad")  # every 5 s, last at T0
    calm_others(observe, start, 120)
    report = engine_.tick(T0, retention=False)
    alerts = negative_alerts(session_factory)
    assert len(alerts) == 1 and report.opened == 1
    alert = alerts[0]
    assert (alert.patient_id, alert.ward_id, alert.state, alert.severity) == (
        hospital.patients[0],
        hospital.ward_id,
        "firing",
        2,
    )
    assert alert.opened_at == T0
    ev = alert.evidence
    assert ev["counts"] == {"angry": 0, "happy": 0, "relaxed": 0, "sad": 120}
    assert ev["n_obs"] == 120 and ev["share"] == pytest.approx(0.85) and ev["label_share"] == 1.0
    assert ev["window_s"] == 600 and ev["first_at"] == start.isoformat() and ev["last_at"] == T0.isoformat()
    opened = [n for n in report.notices if n.kind == "negative_emotion"]
    assert [(n.type, n.alert_id, n.patient_id) for n in opened] == [("alert.opened", alert.id, hospital.patients[0])]
    with session_factory() as s:
        events = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id)).all()
        assert [(e.from_state, e.to_state) for e in events] == [(None, "firing")]
    # later ticks while it persists: still exactly one
    observe(0, T0 + timedelta(seconds=5), 12, label="sad")
    for k in range(1, 7):
        report = engine_.tick(T0 + timedelta(seconds=10 * k), retention=False)
        assert report.opened == 0
    assert len(negative_alerts(session_factory)) == 1


def test_opens_within_one_tick_of_the_rule_holding(
    engine_: AlertEngine,
    observe: Observe,
    hospital: Hospital,
    session_factory: Callable[[], Session],
    alert_settings: Settings,
) -> None:
    """Relaxed for 10 min, then sad: the alert opens at the first tick at which the rule holds."""
    observe(0, T0 - timedelta(seconds=600), 120, label="relaxed")
    observe(0, T0, 120, label="sad")
    times = [T0 - timedelta(seconds=600) + timedelta(seconds=5 * i) for i in range(240)]
    labels = ["relaxed"] * 120 + ["sad"] * 120
    params = RuleParams.from_settings(alert_settings)

    def rule_holds(now: datetime) -> bool:  # the rule computed here, independently of SQL
        inside = [lab for t, lab in zip(times, labels, strict=True) if now - timedelta(seconds=600) < t <= now]
        mass = sum(PROBS[lab][0] + PROBS[lab][3] for lab in inside)
        stats = WindowStats(0, len(inside), {}, mass, {}, None, None)
        return evaluate_negative(stats, params, now=now, is_open=False).action == "open"

    expected = next(T0 + timedelta(seconds=7 * k) for k in range(200) if rule_holds(T0 + timedelta(seconds=7 * k)))
    for k in range(200):  # ticks every 7 s (not aligned with the observations)
        now = T0 + timedelta(seconds=7 * k)
        engine_.tick(now, retention=False)
        if negative_alerts(session_factory):
            break
    alerts = negative_alerts(session_factory)
    assert len(alerts) == 1 and alerts[0].opened_at == expected
    assert expected > T0 + timedelta(seconds=60)  # it took sustained sadness, not one face


def test_minimum_evidence(engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session]) -> None:
    observe(0, T0 - timedelta(seconds=19 * 5), 19, label="angry")  # 19 observations, all angry
    engine_.tick(T0, retention=False)
    assert negative_alerts(session_factory) == []
    observe(0, T0 + timedelta(seconds=5), 1, label="angry")  # the 20th
    engine_.tick(T0 + timedelta(seconds=5), retention=False)
    assert len(negative_alerts(session_factory)) == 1


def test_observations_outside_the_window_do_not_count(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session]
) -> None:
    observe(0, T0 - timedelta(seconds=1200), 100, label="sad")  # all older than 600 s at T0... but 100*5=500 s
    engine_.tick(T0 + timedelta(seconds=1000), retention=False)  # newest is T0-705 s: out of the window
    assert negative_alerts(session_factory) == []
    observe(0, T0 + timedelta(seconds=2000), 30, label="sad")  # in the future of the next tick: ignored
    engine_.tick(T0 + timedelta(seconds=1500), retention=False)
    assert negative_alerts(session_factory) == []


def test_hysteresis_no_flapping_then_auto_resolve_after_the_period(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session]
) -> None:
    observe(0, T0 - timedelta(seconds=595), 120, label="sad")
    # 15 min on the boundary (alternating sad/happy: share 0.46, between close 0.4 and open 0.6) ...
    observe(0, T0 + timedelta(seconds=5), 180, label=lambda i: "sad" if i % 2 == 0 else "happy")
    # ... then 25 min relaxed
    observe(0, T0 + timedelta(seconds=905), 300, label="relaxed")
    resolved_at = None
    for k in range(0, 81):  # a tick every 30 s for 40 min
        now = T0 + timedelta(seconds=30 * k)
        report = engine_.tick(now, retention=False)
        if report.resolved:
            resolved_at = now
            break
    alerts = negative_alerts(session_factory)
    assert len(alerts) == 1  # never a second alert while on the boundary
    alert = alerts[0]
    assert alert.state == "resolved" and alert.resolution == "auto" and alert.resolved_at == resolved_at
    below_since = datetime.fromisoformat(alert.evidence["below_close_since"])
    assert below_since > T0 + timedelta(seconds=900)  # not during the boundary phase
    assert resolved_at - below_since == timedelta(seconds=300)  # exactly the resolve period (on the 30 s grid)
    with session_factory() as s:
        events = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.at)).all()
        transitions = [(e.from_state, e.to_state, e.user_id) for e in events if e.from_state != e.to_state]
        assert transitions == [(None, "firing", None), ("firing", "resolved", None)]  # (escalations aside)
        assert "auto-resolved" in (events[-1].note or "")


def test_boundary_patient_opens_once_over_an_hour(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session]
) -> None:
    # share oscillating around the open threshold (0.56 .. 0.63) for an hour
    observe(
        0,
        T0 - timedelta(seconds=600),
        840,
        label=lambda i: "sad" if (i % 20) < (14 if (i // 120) % 2 else 12) else "relaxed",
    )
    for k in range(0, 121):
        engine_.tick(T0 + timedelta(seconds=30 * k), retention=False)
    assert len(negative_alerts(session_factory)) == 1


def test_snooze_blocks_opening_until_expiry(
    engine_: AlertEngine, observe: Observe, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    with session_factory() as s, s.begin():
        snooze_patient(
            s,
            hospital.patients[0],
            until=T0 + timedelta(minutes=30),
            reason="family visit, crying",
            now=T0 - timedelta(minutes=1),
        )
        notices = take_notices(s)
    assert [(n.type, n.patient_id, n.alert_id) for n in notices] == [("alert.snoozed", hospital.patients[0], None)]
    observe(0, T0 - timedelta(seconds=595), 600, label="sad")  # sad for 50 min
    for minute in range(0, 30, 5):
        engine_.tick(T0 + timedelta(minutes=minute), retention=False)
    assert negative_alerts(session_factory) == []
    engine_.tick(T0 + timedelta(minutes=30, seconds=5), retention=False)  # snooze over
    alerts = negative_alerts(session_factory)
    assert len(alerts) == 1 and alerts[0].opened_at == T0 + timedelta(minutes=30, seconds=5)


def test_per_ward_and_per_patient_overrides(
    engine_: AlertEngine, hospital: Hospital, session_factory: Callable[[], Session], alert_settings: Settings
) -> None:
    from alerts_helpers import add_observations, observation_rows

    start = T0 - timedelta(seconds=595)
    rows = observation_rows(
        hospital.other_patient, hospital.other_bed, hospital.other_camera_id, start, 120, label="sad"
    )
    rows += observation_rows(hospital.patients[0], hospital.beds[0], hospital.camera_id, start, 120, label="sad")
    rows += observation_rows(
        hospital.patients[1],
        hospital.beds[1],
        hospital.camera_id,
        start,
        120,
        label=lambda i: "sad" if i % 2 else "happy",
    )  # share 0.46
    add_observations(session_factory, rows)
    base = RuleParams.from_settings(alert_settings)
    with session_factory() as s, s.begin():
        # ward A is stricter (share 0.85 is not enough) ...
        set_rule_override(
            s, {"negative_open_share": 0.9, "negative_close_share": 0.5}, ward_id=hospital.ward_id, base=base
        )
        # ... but patient A2 is watched more closely (share 0.46 is enough), with a shorter window
        set_rule_override(
            s,
            {"negative_open_share": 0.45, "negative_close_share": 0.3, "negative_window_s": 300},
            patient_id=hospital.patients[1],
            base=base,
        )
    engine_.tick(T0, retention=False)
    opened = {a.patient_id for a in negative_alerts(session_factory)}
    assert opened == {hospital.other_patient, hospital.patients[1]}  # not patient A1 (ward override)
    with session_factory() as s:
        alert = s.scalar(select(Alert).where(Alert.patient_id == hospital.patients[1]))
        assert alert.evidence["window_s"] == 300 and alert.evidence["open_share"] == 0.45
        assert alert.evidence["n_obs"] == 60


def test_escalation_renotifies_within_its_priority_until_acknowledged(
    engine_: AlertEngine, observe: Observe, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    observe(0, T0 - timedelta(seconds=595), 120 + 12 * 60, label="sad")  # sad for an hour
    engine_.tick(T0, retention=False)
    (alert,) = negative_alerts(session_factory)
    assert (alert.priority, alert.severity, alert.escalation_level) == ("medium", 2, 0)
    assert engine_.tick(T0 + timedelta(seconds=899), retention=False).escalated == 0
    report = engine_.tick(T0 + timedelta(seconds=900), retention=False)
    assert report.escalated == 1
    assert [(n.type, n.severity) for n in report.notices if n.kind == "negative_emotion"] == [("alert.escalated", 2)]
    assert engine_.tick(T0 + timedelta(seconds=1000), retention=False).escalated == 0
    assert engine_.tick(T0 + timedelta(seconds=1800), retention=False).escalated == 1
    (alert,) = negative_alerts(session_factory)
    # the urgency rises (reminders), the priority does not: escalation never jumps a level
    assert (alert.priority, alert.severity, alert.escalation_level, alert.last_notified_at) == (
        "medium",
        2,
        2,
        T0 + timedelta(seconds=1800),
    )
    with session_factory() as s, s.begin():
        acknowledge_alert(s, alert.id, now=T0 + timedelta(seconds=1900))
    assert engine_.tick(T0 + timedelta(seconds=2700), retention=False).escalated == 0
    with session_factory() as s:
        events = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.at)).all()
        assert [(e.from_state, e.to_state) for e in events] == [
            (None, "firing"),
            ("firing", "firing"),
            ("firing", "firing"),
            ("firing", "acknowledged"),
        ]
        assert "escalated" in (events[1].note or "")


def test_acknowledged_alert_still_auto_resolves_and_discharge_stops_evaluation(
    engine_: AlertEngine, observe: Observe, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    from areya.admin import discharge_patient

    observe(0, T0 - timedelta(seconds=595), 120, label="sad")
    observe(0, T0 + timedelta(seconds=5), 240, label="relaxed")
    observe(1, T0 - timedelta(seconds=595), 120, label="angry")
    engine_.tick(T0, retention=False)
    a0, a1 = negative_alerts(session_factory)
    with session_factory() as s, s.begin():
        acknowledge_alert(s, a0.id, note="seen, talking to the patient", now=T0 + timedelta(seconds=60))
        discharge_patient(s, "MRN-A2", at=T0 + timedelta(seconds=60))
    for k in range(1, 40):
        engine_.tick(T0 + timedelta(seconds=30 * k), retention=False)
    a0, a1 = negative_alerts(session_factory)
    assert (a0.state, a0.resolution) == ("resolved", "auto")
    assert a0.acknowledged_at == T0 + timedelta(seconds=60)
    assert (a1.state, a1.resolution) == ("resolved", "auto")
    with session_factory() as s:
        last = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == a1.id).order_by(AlertEvent.id)).all()[-1]
        assert (last.to_state, last.note) == ("resolved", "patient discharged")
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "negative_emotion")) == 2
