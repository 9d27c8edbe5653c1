"""Face quality in the alert rule: readings below ``min_face_quality`` are set aside (they count for nothing, and
the evidence says how many there were and why), readings without a quality are read; the full query, the
incremental window and the baseline agree (real SQLite, the real engine on an injected clock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from alerts_helpers import T0, Hospital, add_observations, observation_rows
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from areya.alerts.engine import AlertEngine
from areya.alerts.evidence import NegativeEvidence
from areya.alerts.rules import RuleParams
from areya.alerts.window import BaselineCache, WindowCache, patient_baselines, window_stats
from areya.config import Settings
from areya.db.models import Alert, Camera


def rows_with_quality(
    hospital: Hospital, index: int, start: Any, count: int, quality: float | None, **kwargs: Any
) -> list[dict[str, Any]]:
    rows = observation_rows(hospital.patients[index], hospital.beds[index], hospital.camera_id, start, count, **kwargs)
    for row in rows:
        row["quality"] = quality
    return rows


@pytest.fixture
def quiet_cameras(session_factory: Callable[[], Session], hospital: Hospital) -> None:
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))


def test_readings_below_the_threshold_are_set_aside_and_counted_in_every_aggregate(
    session_factory: Callable[[], Session], hospital: Hospital
) -> None:
    start = T0 - timedelta(seconds=290)
    add_observations(
        session_factory,
        rows_with_quality(hospital, 0, start, 30, 0.9, every_s=3.0, label="relaxed")
        + rows_with_quality(hospital, 0, start + timedelta(seconds=1), 20, 0.1, every_s=3.0, label="sad")
        + rows_with_quality(hospital, 0, start + timedelta(seconds=2), 10, None, every_s=3.0, label="relaxed")
        + rows_with_quality(hospital, 1, start, 12, 0.39, every_s=5.0, label="angry"),  # all set aside
    )
    with session_factory() as s:
        plain = window_stats(s, until=T0, window_s=300)
        strict = window_stats(s, until=T0, window_s=300, min_quality=0.4)
        cache = WindowCache(min_quality=0.4)
        cache.refresh(s, T0, 300)
        cached = cache.window_stats(s, until=T0, window_s=300)
    p0, p1 = hospital.patients[0], hospital.patients[1]
    assert (plain[p0].n, plain[p0].n_set_aside, plain[p0].counts["sad"]) == (60, 0, 20)
    assert (strict[p0].n, strict[p0].n_set_aside, strict[p0].counts["sad"]) == (40, 20, 0)  # unknown quality: read
    assert strict[p0].counts["relaxed"] == 40 and strict[p0].prob_sums["sad"] == pytest.approx(40 * 0.07)
    assert (strict[p1].n, strict[p1].n_set_aside, strict[p1].negative_mass) == (0, 12, 0.0)
    for pid in (p0, p1):  # the incremental window agrees with the full query
        assert (cached[pid].n, cached[pid].n_set_aside, cached[pid].counts) == (
            strict[pid].n,
            strict[pid].n_set_aside,
            strict[pid].counts,
        )
        assert cached[pid].negative_mass == pytest.approx(strict[pid].negative_mass)


def test_the_baseline_reads_no_reading_set_aside(session_factory: Callable[[], Session], hospital: Hospital) -> None:
    params = RuleParams(baseline_s=3600, baseline_min_obs=10, min_quality=0.4, open_share=0.52, close_share=0.44)
    start = T0 - timedelta(minutes=50)
    add_observations(
        session_factory,
        rows_with_quality(hospital, 0, start, 60, 0.8, every_s=30.0, label="relaxed")
        + rows_with_quality(hospital, 0, start + timedelta(seconds=5), 60, 0.2, every_s=30.0, label="sad"),
    )
    with session_factory() as s:
        strict = patient_baselines(s, T0, {hospital.patients[0]: params}, BaselineCache(min_quality=0.4))
        plain = patient_baselines(
            s, T0, {hospital.patients[0]: RuleParams(baseline_s=3600, baseline_min_obs=10)}, BaselineCache()
        )
    usual, everything = strict[hospital.patients[0]], plain[hospital.patients[0]]
    assert everything.n == 2 * usual.n and everything.n_negative == usual.n
    assert usual.n_negative == 0 and usual.score("probability") == pytest.approx(0.13)


def test_poor_sad_faces_open_no_alert_and_the_evidence_counts_what_was_set_aside(
    alert_settings: Settings, session_factory: Callable[[], Session], hospital: Hospital, quiet_cameras: None
) -> None:
    settings = alert_settings.replace(min_face_quality=0.4, negative_baseline_s=0)
    start = T0 - timedelta(seconds=590)
    # patient 0: a calm face read well, and as many poor readings of it that look sad (small, dark, lying)
    add_observations(
        session_factory,
        rows_with_quality(hospital, 0, start, 30, 0.85, every_s=18.0, label="relaxed")
        + rows_with_quality(hospital, 0, start + timedelta(seconds=4), 90, 0.15, every_s=6.0, label="sad"),
    )
    # patient 1: sad and read well, with a few poor readings besides
    add_observations(
        session_factory,
        rows_with_quality(hospital, 1, start, 60, 0.9, every_s=9.0, label="sad")
        + rows_with_quality(hospital, 1, start + timedelta(seconds=4), 7, 0.05, every_s=30.0, label="relaxed"),
    )
    report = AlertEngine(settings, session_factory).tick(T0, retention=False)
    with session_factory() as s:
        alerts = {a.patient_id: a for a in s.scalars(select(Alert).where(Alert.kind == "negative_emotion"))}
    assert hospital.patients[0] not in alerts  # its poor readings were set aside: a calm bed
    assert report.opened == 1 and hospital.patients[1] in alerts
    evidence = NegativeEvidence.from_json(alerts[hospital.patients[1]].evidence)
    assert evidence is not None
    assert (evidence.n_obs, evidence.n_set_aside, evidence.min_quality) == (60, 7, 0.4)
    assert evidence.public()["set_aside"] == {"n": 7, "reason": "face not clearly visible", "min_quality": 0.4}
    assert evidence.headline().endswith("; 7 readings set aside: face not clearly visible")
    [notice] = [n for n in report.notices if n.type == "alert.opened"]
    assert "7 readings set aside: face not clearly visible" in (notice.note or "")  # webhook, e-mail, event note

    # without the setting, the same poor readings make patient 0's calm bed look sad enough to alert
    again = AlertEngine(settings.replace(min_face_quality=0.0), session_factory)
    with session_factory() as s:
        stats = window_stats(s, until=T0, window_s=settings.negative_window_s)
    assert stats[hospital.patients[0]].share >= settings.negative_open_share
    assert again.tick(T0 + timedelta(seconds=5), retention=False).opened == 1
