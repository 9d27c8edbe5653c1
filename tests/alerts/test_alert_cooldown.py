"""No flapping: after a clinician resolves an alert, the rule does not reopen it during the cool-down on the same
evidence, reopens it on clearly stronger evidence, and auto-resolve keeps its hysteresis (real SQLite, injected
clock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from alerts_helpers import T0, Hospital
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from areya.alerts.engine import AlertEngine
from areya.alerts.evidence import NegativeEvidence
from areya.alerts.lifecycle import resolve_alert
from areya.alerts.rules import ManualResolve, RuleParams, evaluate_negative, reopen_level
from areya.config import Settings
from areya.db.models import Alert, Camera

Observe = Callable[..., None]
COOLDOWN_S = 1800
MARGIN = 0.15


@pytest.fixture(autouse=True)
def _cameras_disabled(hospital: Hospital, session_factory: Callable[[], Session]) -> None:
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))


@pytest.fixture
def cool_settings(alert_settings: Settings) -> Settings:
    return alert_settings.replace(
        negative_measure="probability", negative_cooldown_s=COOLDOWN_S, negative_reopen_margin=MARGIN
    )


@pytest.fixture
def engine_(cool_settings: Settings, session_factory: Callable[[], Session]) -> AlertEngine:
    return AlertEngine(cool_settings, session_factory)


def alerts(session_factory: Callable[[], Session]) -> list[Alert]:
    with session_factory() as s:
        return list(s.scalars(select(Alert).where(Alert.kind == "negative_emotion").order_by(Alert.id)))


def run_ticks(
    engine: AlertEngine, observe: Observe, start: datetime, seconds: int, label: str | Callable[[int], str]
) -> None:
    """Observations every 5 s for patient 0 and a tick after each, from ``start`` for ``seconds``."""
    for k in range(seconds // 5):
        at = start + timedelta(seconds=5 * (k + 1))
        observe(0, at, 1, label=label if isinstance(label, str) else (lambda _i, k=k: label(k)))
        engine.tick(at, retention=False)


def open_then_resolve(
    engine: AlertEngine, observe: Observe, session_factory: Callable[[], Session], label: str | Callable[[int], str]
) -> tuple[Alert, datetime]:
    """Ten minutes of ``label`` observations open an alert; a clinician resolves it a minute later."""
    observe(0, T0 - timedelta(seconds=600), 120, label=label)
    engine.tick(T0, retention=False)
    [alert] = alerts(session_factory)
    run_ticks(engine, observe, T0, 60, label)
    resolved_at = T0 + timedelta(seconds=60)
    with session_factory() as s, s.begin():
        resolve_alert(s, alert.id, note="seen; patient was told bad news", now=resolved_at)
    return alert, resolved_at


def test_same_evidence_does_not_reopen_within_the_cooldown(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session]
) -> None:
    first, resolved_at = open_then_resolve(engine_, observe, session_factory, "sad")
    # the patient stays just as sad: every tick of the cool-down sees the same evidence, above the open share
    run_ticks(engine_, observe, resolved_at, 600, "sad")
    assert [a.id for a in alerts(session_factory)] == [first.id]
    # once the cool-down is over, the same evidence opens a new alert again
    later = resolved_at + timedelta(seconds=COOLDOWN_S)
    observe(0, later - timedelta(seconds=600), 120, label="sad")
    engine_.tick(later, retention=False)
    after = alerts(session_factory)
    assert len(after) == 2 and after[1].opened_at == later


def test_clearly_stronger_evidence_reopens_within_the_cooldown(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session], cool_settings: Settings
) -> None:
    # angry 70% of the time (p_angry + p_sad = 0.85) and relaxed otherwise (0.13): probability about 0.63
    def moderate(i: int) -> str:
        return "relaxed" if i % 10 in (0, 3, 6) else "angry"

    first, resolved_at = open_then_resolve(engine_, observe, session_factory, moderate)
    with session_factory() as s:
        level = NegativeEvidence.from_json(s.get(Alert, first.id).evidence).resolved_level()
    assert 0.6 < level < 0.67
    # stronger evidence (all angry), still above the open share but not yet level + margin: no reopening ...
    run_ticks(engine_, observe, resolved_at, 60, "angry")
    assert len(alerts(session_factory)) == 1
    # ... until the window holds clearly stronger evidence than what was resolved: then it reopens, in the cool-down
    for k in range(120):
        at = resolved_at + timedelta(seconds=60 + 5 * (k + 1))
        observe(0, at, 1, label="angry")
        engine_.tick(at, retention=False)
        if len(alerts(session_factory)) == 2:
            break
    reopened = alerts(session_factory)
    assert len(reopened) == 2
    assert reopened[1].opened_at - resolved_at < timedelta(seconds=cool_settings.negative_cooldown_s)
    evidence = NegativeEvidence.from_json(reopened[1].evidence)
    assert evidence is not None and evidence.score >= level + MARGIN


def test_auto_resolve_keeps_hysteresis_and_no_cooldown(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session], cool_settings: Settings
) -> None:
    observe(0, T0 - timedelta(seconds=600), 120, label="sad")
    engine_.tick(T0, retention=False)
    [first] = alerts(session_factory)
    # calm again: the score falls below the close share, and the alert resolves only after resolve_period_s
    # below it (hysteresis)
    run_ticks(engine_, observe, T0, 900, "happy")
    with session_factory() as s:
        alert = s.get(Alert, first.id)
        assert alert.state == "resolved" and alert.resolution == "auto"
        below_since = datetime.fromisoformat(alert.evidence["below_close_since"])
        assert alert.resolved_at - below_since >= timedelta(seconds=cool_settings.resolve_period_s)
        resolved_at = alert.resolved_at
    # an auto-resolved alert starts no cool-down: the next sad spell opens a new one as soon as the rule holds
    run_ticks(engine_, observe, resolved_at + timedelta(seconds=600), 600, "sad")
    assert len(alerts(session_factory)) == 2


def test_reopen_level_is_pure_and_bounded() -> None:
    params = RuleParams(open_share=0.5, close_share=0.3, cooldown_s=600, reopen_margin=0.2, measure="probability")
    resolved = ManualResolve(T0, 0.62)
    assert reopen_level(params, None, T0) == 0.5
    assert reopen_level(params, resolved, T0 + timedelta(seconds=10)) == pytest.approx(0.82)
    assert reopen_level(params, resolved, T0 + timedelta(seconds=600)) == 0.5  # cool-down over
    assert reopen_level(params, ManualResolve(T0, 0.1), T0) == 0.5  # never below the open share
    no_cooldown = RuleParams(open_share=0.5, close_share=0.3, cooldown_s=0, measure="probability")
    assert reopen_level(no_cooldown, resolved, T0) == 0.5
    assert evaluate_negative(None, params, now=T0, is_open=False, last_manual=resolved).action == "none"


def test_no_distress_finding_holds_the_longer_cooldown() -> None:
    params = RuleParams(open_share=0.5, close_share=0.3, cooldown_s=600, reopen_margin=0.2, no_distress_cooldown_s=7200)
    after = T0 + timedelta(seconds=3600)  # past the plain cool-down, inside the no-distress one
    assert reopen_level(params, ManualResolve(T0, 0.62), after) == 0.5
    assert reopen_level(params, ManualResolve(T0, 0.62, "distress_seen"), after) == 0.5
    assert reopen_level(params, ManualResolve(T0, 0.62, "no_distress_seen"), after) == pytest.approx(0.82)
    assert reopen_level(params, ManualResolve(T0, 0.62, "no_distress_seen"), T0 + timedelta(seconds=7200)) == 0.5
    # a shorter no-distress cool-down never shortens the plain one
    short = RuleParams(open_share=0.5, close_share=0.3, cooldown_s=600, reopen_margin=0.2, no_distress_cooldown_s=60)
    assert reopen_level(short, ManualResolve(T0, 0.62, "no_distress_seen"), T0 + timedelta(seconds=300)) > 0.5
    with pytest.raises(ValueError):
        RuleParams(no_distress_cooldown_s=-1)


@pytest.mark.parametrize(("finding", "reopens"), [("no_distress_seen", False), ("distress_seen", True), (None, True)])
def test_the_resolve_finding_decides_the_cooldown_in_the_engine(
    alert_settings: Settings,
    session_factory: Callable[[], Session],
    observe: Observe,
    finding: str | None,
    reopens: bool,
) -> None:
    settings = alert_settings.replace(
        negative_measure="probability",
        negative_cooldown_s=COOLDOWN_S,
        negative_reopen_margin=MARGIN,
        negative_no_distress_cooldown_s=4 * COOLDOWN_S,
    )
    engine = AlertEngine(settings, session_factory)
    observe(0, T0 - timedelta(seconds=600), 120, label="sad")
    engine.tick(T0, retention=False)
    [first] = alerts(session_factory)
    resolved_at = T0 + timedelta(seconds=60)
    with session_factory() as s, s.begin():
        resolve_alert(s, first.id, note="seen at the bedside", now=resolved_at, finding=finding)
    with session_factory() as s:
        assert s.get(Alert, first.id).finding == finding
    # the same evidence after the plain cool-down: a new alert, unless the clinician found no distress
    later = resolved_at + timedelta(seconds=COOLDOWN_S + 60)
    observe(0, later - timedelta(seconds=600), 120, label="sad")
    engine.tick(later, retention=False)
    assert len(alerts(session_factory)) == (2 if reopens else 1)


def test_a_finding_is_checked(
    engine_: AlertEngine, observe: Observe, session_factory: Callable[[], Session], hospital: Hospital
) -> None:
    from areya.errors import Invalid

    observe(0, T0 - timedelta(seconds=600), 120, label="sad")
    engine_.tick(T0, retention=False)
    [first] = alerts(session_factory)
    with session_factory() as s, s.begin(), pytest.raises(Invalid, match="finding must be one of"):
        resolve_alert(s, first.id, note="seen", now=T0, finding="fine")
    with session_factory() as s:
        assert s.get(Alert, first.id).state == "firing"
