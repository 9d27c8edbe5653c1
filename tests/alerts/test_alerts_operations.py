"""Operational alerts (camera offline, pipeline stalled) and the retention rollup, on a real database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from alerts_helpers import PROBS, T0, Hospital, add_observations, observation_rows
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from areya.alerts.engine import AlertEngine
from areya.alerts.retention import roll_up_observations
from areya.camera.health import publish_health
from areya.config import Settings
from areya.db.models import Alert, Camera, Observation, ObservationMinute


def camera_alerts(session_factory: Callable[[], Session], camera_id: int) -> list[Alert]:
    with session_factory() as s:
        return list(
            s.scalars(
                select(Alert).where(Alert.camera_id == camera_id).order_by(Alert.id).options(selectinload(Alert.events))
            )
        )


def set_last_frame(session_factory: Callable[[], Session], camera_id: int, at: object) -> None:
    with session_factory() as s, s.begin():
        s.execute(update(Camera).where(Camera.id == camera_id).values(last_frame_at=at, health_status="online"))


def test_camera_offline_detection_and_recovery(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session], rclient: redis.Redis
) -> None:
    engine = AlertEngine(alert_settings, session_factory, redis_client=rclient)
    set_last_frame(session_factory, hospital.camera_id, T0 - timedelta(seconds=30))
    with session_factory() as s, s.begin():  # camera B: disabled, never alerts
        s.execute(update(Camera).where(Camera.id == hospital.other_camera_id).values(enabled=False))
    engine.tick(T0, retention=False)
    assert camera_alerts(session_factory, hospital.camera_id) == []
    report = engine.tick(T0 + timedelta(seconds=31), retention=False)  # 61 s without a frame
    (alert,) = camera_alerts(session_factory, hospital.camera_id)
    assert (alert.kind, alert.state, alert.ward_id, alert.patient_id, alert.priority, alert.severity) == (
        "camera_offline",
        "firing",
        hospital.ward_id,
        None,
        "medium",  # a technical condition that blinds monitoring: never below the mood inference
        2,
    )
    assert alert.evidence["last_frame_at"] == (T0 - timedelta(seconds=30)).isoformat()
    assert [(n.type, n.kind, n.camera_id) for n in report.notices] == [
        ("alert.opened", "camera_offline", hospital.camera_id)
    ]
    engine.tick(T0 + timedelta(seconds=40), retention=False)
    assert len(camera_alerts(session_factory, hospital.camera_id)) == 1  # no duplicate
    # frames again, seen through the ingestor's Redis health hash only (the DB row is not updated yet)
    publish_health(
        rclient, hospital.camera_id, {"status": "online", "last_frame_at": (T0 + timedelta(seconds=45)).timestamp()}
    )
    report = engine.tick(T0 + timedelta(seconds=50), retention=False)
    (alert,) = camera_alerts(session_factory, hospital.camera_id)
    assert (alert.state, alert.resolution) == ("resolved", "auto")
    assert [n.type for n in report.notices] == ["alert.resolved"]
    assert camera_alerts(session_factory, hospital.other_camera_id) == []


def test_camera_never_seen_and_disabled_camera(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    engine = AlertEngine(alert_settings, session_factory)  # no Redis: the database alone
    engine.tick(T0, retention=False)
    assert [a.kind for a in camera_alerts(session_factory, hospital.other_camera_id)] == ["camera_offline"]
    with session_factory() as s, s.begin():
        s.execute(update(Camera).where(Camera.id == hospital.other_camera_id).values(enabled=False))
    engine.tick(T0 + timedelta(seconds=5), retention=False)
    (alert,) = camera_alerts(session_factory, hospital.other_camera_id)
    assert alert.state == "resolved" and alert.events[-1].note == "camera disabled"


def test_pipeline_stalled_when_observations_stop_while_frames_arrive(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    engine = AlertEngine(alert_settings, session_factory)
    with session_factory() as s, s.begin():
        s.execute(update(Camera).where(Camera.id == hospital.other_camera_id).values(enabled=False))
    add_observations(
        session_factory,
        observation_rows(hospital.patients[0], hospital.beds[0], hospital.camera_id, T0 - timedelta(seconds=300), 61),
    )  # until T0
    for seconds in (0, 120, 300):  # frames keep arriving; observations stopped at T0
        set_last_frame(session_factory, hospital.camera_id, T0 + timedelta(seconds=seconds))
        engine.tick(T0 + timedelta(seconds=seconds), retention=False)
    assert camera_alerts(session_factory, hospital.camera_id) == []  # 300 s (5 x camera_offline_s) not passed yet
    set_last_frame(session_factory, hospital.camera_id, T0 + timedelta(seconds=301))
    engine.tick(T0 + timedelta(seconds=301), retention=False)
    (alert,) = camera_alerts(session_factory, hospital.camera_id)
    assert (alert.kind, alert.state) == ("pipeline_stalled", "firing")
    assert alert.evidence["last_observation_at"] == T0.isoformat()
    # the worker is back: observations again
    add_observations(
        session_factory,
        observation_rows(hospital.patients[0], hospital.beds[0], hospital.camera_id, T0 + timedelta(seconds=320), 1),
    )
    set_last_frame(session_factory, hospital.camera_id, T0 + timedelta(seconds=325))
    engine.tick(T0 + timedelta(seconds=325), retention=False)
    (alert,) = camera_alerts(session_factory, hospital.camera_id)
    assert alert.state == "resolved" and alert.events[-1].note == "observations arriving again"


def test_no_stall_alert_when_the_camera_is_offline(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    engine = AlertEngine(alert_settings, session_factory)
    add_observations(
        session_factory,
        observation_rows(hospital.patients[0], hospital.beds[0], hospital.camera_id, T0 - timedelta(seconds=300), 61),
    )
    set_last_frame(session_factory, hospital.camera_id, T0)
    engine.tick(T0 + timedelta(seconds=400), retention=False)
    kinds = [a.kind for a in camera_alerts(session_factory, hospital.camera_id)]
    assert kinds == ["camera_offline"]


# --------------------------------------------------------------------------- retention


def _expected_minutes(rows: list[dict]) -> dict[tuple[int, object], dict]:
    out: dict[tuple[int, object], dict] = defaultdict(
        lambda: {"n": 0, "counts": defaultdict(int), "sums": defaultdict(float)}
    )
    for r in rows:
        key = (r["patient_id"], r["captured_at"].replace(second=0, microsecond=0))
        out[key]["n"] += 1
        out[key]["counts"][r["label4"]] += 1
        for label in PROBS:
            out[key]["sums"][label] += r[f"p_{label}"]
    return out


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_retention_rolls_up_then_deletes_preserving_counts(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session], batch_size: int
) -> None:
    old_start = T0 - timedelta(days=8, seconds=17)  # minutes straddled by batches of 7
    labels = ["sad", "happy", "relaxed", "angry", "sad"]
    old = observation_rows(
        hospital.patients[0],
        hospital.beds[0],
        hospital.camera_id,
        old_start,
        40,
        every_s=4,
        label=lambda i: labels[i % 5],
    )
    old += observation_rows(
        hospital.patients[1],
        hospital.beds[1],
        hospital.camera_id,
        old_start,
        25,
        every_s=7,
        label=lambda i: labels[(i * 3) % 5],
    )
    recent = observation_rows(
        hospital.patients[0], hospital.beds[0], hospital.camera_id, T0 - timedelta(days=6, hours=23), 10
    )
    add_observations(session_factory, old + recent)
    now = T0
    first = roll_up_observations(
        session_factory, now=now, retention_days=7, batch_size=batch_size, max_batches=2
    )  # partial run first: minutes split across runs must still merge
    rest = roll_up_observations(session_factory, now=now, retention_days=7, batch_size=batch_size, max_batches=100)
    assert first.observations + rest.observations == len(old) and rest.done
    expected = _expected_minutes(old)
    with session_factory() as s:
        remaining = s.scalars(select(Observation.captured_at).order_by(Observation.captured_at)).all()
        assert len(remaining) == len(recent)  # raw old rows deleted, recent ones kept
        minutes = {(m.patient_id, m.minute): m for m in s.scalars(select(ObservationMinute))}
    assert set(minutes) == set(expected)
    for key, exp in expected.items():
        m = minutes[key]
        assert m.n_obs == exp["n"]
        assert {lab: getattr(m, f"n_{lab}") for lab in PROBS} == {lab: exp["counts"][lab] for lab in PROBS}
        for lab in PROBS:
            assert getattr(m, f"mean_p_{lab}") == pytest.approx(exp["sums"][lab] / exp["n"])
    assert sum(m.n_obs for m in minutes.values()) == len(old)
    # idempotent: running again changes nothing
    again = roll_up_observations(session_factory, now=now, retention_days=7, batch_size=batch_size)
    assert again.observations == 0 and again.done
    with session_factory() as s:
        assert s.scalar(select(func.sum(ObservationMinute.n_obs))) == len(old)


def test_tick_runs_retention_when_due(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    add_observations(
        session_factory,
        observation_rows(hospital.patients[0], hospital.beds[0], hospital.camera_id, T0 - timedelta(days=9), 30),
    )
    engine = AlertEngine(alert_settings, session_factory, retention_interval_s=60)
    report = engine.tick(T0)
    assert report.retention is not None and report.retention.observations == 30
    assert engine.tick(T0 + timedelta(seconds=5)).retention is None  # not due again yet
    assert engine.tick(T0 + timedelta(seconds=60)).retention is not None


def test_retention_backlog_is_worked_off_tick_after_tick(
    alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    add_observations(
        session_factory,
        observation_rows(hospital.patients[0], hospital.beds[0], hospital.camera_id, T0 - timedelta(days=9), 30),
    )
    engine = AlertEngine(alert_settings, session_factory, retention_interval_s=60, retention_batch=7)
    engine.retention_budget_s = 0.0  # one batch per run
    rolled = []
    for k in range(6):
        report = engine.tick(T0 + timedelta(seconds=5 * k))
        rolled.append(report.retention.observations if report.retention else None)
    assert rolled == [7, 7, 7, 7, 2, None]  # a backlog continues at once; then every retention_interval_s
    with session_factory() as s:
        assert s.scalar(select(func.sum(ObservationMinute.n_obs))) == 30
