"""The negative-emotion rule at night: which minutes are night (hospital time, daylight saving followed), the
night's raised thresholds, the per-patient baseline read by part of the day (night minutes at night, day minutes
by day; the incremental sums agree with a fresh read and with the rows themselves), and the engine on a real
database: a patient whose dim resting face reads mildly negative all night opens no alert at night with the
baseline by part of the day (it does with the plain baseline), an episode across several expressions does, and
poor (eyes-closed) readings are set aside and counted in the evidence."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from alerts_helpers import PROBS, Hospital, add_observations, observation_rows, window_stats
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from areya.alerts.engine import AlertEngine
from areya.alerts.evidence import NegativeEvidence, negative_evidence
from areya.alerts.rules import (
    Baseline,
    RuleParams,
    baseline_minutes,
    evaluate_negative,
    night_minutes,
    thresholds,
    usual_high,
)
from areya.alerts.window import BaselineCache, patient_baselines
from areya.config import ConfigError, Settings
from areya.db.models import Alert, Camera

NIGHT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 02:00 UTC: night in UTC and in Europe/London
DAY = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
P = RuleParams(
    window_s=300,
    min_obs=20,
    open_share=0.52,
    close_share=0.44,
    baseline_s=86_400,
    baseline_min_obs=100,
    baseline_margin=0.2,
    baseline_ceiling=0.6,
    night_raise=0.1,
    baseline_by_night=True,
)


def minute_of(at: datetime) -> int:
    return int(at.timestamp()) // 60


# --------------------------------------------------------------------------- the pure rule


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "Asia/Kolkata", "America/New_York"])
def test_night_minutes_agree_with_the_clock_across_daylight_saving(zone: str) -> None:
    params = RuleParams(night_hours=(22, 7), timezone=zone)
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Europe's clocks go forward on 29 March, New York's earlier
    minutes = np.arange(minute_of(start), minute_of(start) + 3 * 1440)
    got = night_minutes(minutes, params)
    want = [params.is_night(datetime.fromtimestamp(int(m) * 60, UTC)) for m in minutes]
    assert got.tolist() == want
    assert 0.3 < got.mean() < 0.45  # nine hours of 24
    day_hours = RuleParams(night_hours=(1, 5), timezone=zone)  # a night that does not cross midnight
    assert night_minutes(minutes, day_hours).tolist() == [
        day_hours.is_night(datetime.fromtimestamp(int(m) * 60, UTC)) for m in minutes
    ]


def test_night_raises_the_plain_thresholds_and_the_ceiling() -> None:
    plain = RuleParams(open_share=0.52, close_share=0.44, night_raise=0.1)
    assert (thresholds(plain, None).open_at, thresholds(plain, None).close_below) == (0.52, 0.44)
    night = thresholds(plain, None, night=True)
    assert (night.open_at, night.close_below, night.night_raise) == pytest.approx((0.62, 0.54, 0.1))
    high = Baseline(1000, 600, 600.0)  # usual 0.60: + 0.2 = 0.80, capped at the ceiling 0.6 (+ 0.1 at night)
    assert thresholds(P, high).open_at == pytest.approx(0.6)
    assert thresholds(P, high, night=True).open_at == pytest.approx(0.7)
    assert thresholds(P, high, night=True).raised_by == pytest.approx(0.08)  # above the night's plain 0.62
    # the rule reads the clock it is given
    window = window_stats(60, 0.58, NIGHT, 290)
    assert evaluate_negative(window, P, now=NIGHT, is_open=False).action == "none"
    assert evaluate_negative(window, P, now=DAY, is_open=False).action == "open"
    with pytest.raises(ValueError, match="night_raise"):
        RuleParams(open_share=0.95, close_share=0.5, night_raise=0.1)
    with pytest.raises(ValueError, match="night hours"):
        RuleParams(night_hours=(7, 7))


def test_settings_validation(settings: Settings) -> None:
    params = RuleParams.from_settings(
        settings.replace(
            negative_night_raise="0.12",
            negative_baseline_by_night="true",
            night_start_h="21",
            night_end_h="6",
            timezone="Europe/London",
        )
    )
    assert (params.night_raise, params.baseline_by_night, params.night_hours) == (0.12, True, (21, 6))
    assert params.timezone == "Europe/London"
    with pytest.raises(ConfigError, match="NIGHT_END_H"):
        settings.replace(night_start_h="7", night_end_h="7")
    with pytest.raises(ConfigError, match="NEGATIVE_NIGHT_RAISE"):
        settings.replace(negative_open_share="0.95", negative_close_share="0.5", negative_night_raise="0.1")


def test_evidence_says_the_usual_level_is_the_nights() -> None:
    usual_night = Baseline(1000, 450, 450.0, part="night")
    ev = negative_evidence(window_stats(60, 0.8, NIGHT, 290), P, NIGHT, usual_night)
    assert ev.open_at == pytest.approx(0.65) and ev.plain_open_at == pytest.approx(0.62)
    assert "this patient's usual at night 45% + 20" in ev.threshold_text()
    assert "the night minutes of the 24 h before the window" in (ev.baseline_text() or "")
    public = ev.public()["baseline"]
    assert public["part"] == "night" and public["night_raise"] == pytest.approx(0.1)
    again = NegativeEvidence.from_json(ev.to_json())
    assert again is not None and again.baseline_part == "night" and again.night_raise == pytest.approx(0.1)
    by_day = negative_evidence(window_stats(60, 0.2, DAY, 290), P, DAY, Baseline(1000, 100, 100.0, part="day"))
    assert by_day.open_at == pytest.approx(0.52) and by_day.night_raise == 0.0


def test_a_held_mildly_negative_resting_face_is_the_usual_high_an_episode_is_above_it() -> None:
    """Six hours of a patient holding a resting face that reads 0.55 for ten minutes at a time between happy
    stretches (0.05): its mean (0.30) + margin stays below the plain threshold, so each such hold would open an
    alert; its usual high (the 0.9 quantile of its windows) is the held face's 0.55, and the threshold follows it;
    an episode across sad and angry faces (0.80) is still above it."""
    params = RuleParams(
        window_s=300, min_obs=60, open_share=0.52, close_share=0.44, baseline_s=21_600, baseline_min_obs=100,
        baseline_margin=0.1, baseline_ceiling=0.7, baseline_quantile=0.9,
    )  # fmt: skip
    minutes = np.zeros((360, 3))
    minutes[:, 0] = 60  # a reading a second
    resting = (np.arange(360) // 10) % 2 == 0  # ten minutes of resting face, ten of happy, again
    minutes[:, 2] = np.where(resting, 0.55, 0.05) * 60
    minutes[:, 1] = np.where(resting, 30, 0)
    high = usual_high(minutes, params)
    assert high == pytest.approx(0.55)
    usual = Baseline(int(minutes[:, 0].sum()), int(minutes[:, 1].sum()), float(minutes[:, 2].sum()), high=high)
    assert usual.score("probability") == pytest.approx(0.30)  # the mean
    held = window_stats(300, 0.55, DAY, 290)
    episode = window_stats(300, 0.80, DAY, 290)
    assert thresholds(params, usual).open_at == pytest.approx(0.65)
    assert evaluate_negative(held, params, now=DAY, is_open=False, baseline=usual).action == "none"
    assert evaluate_negative(episode, params, now=DAY, is_open=False, baseline=usual).action == "open"
    mean_rule = RuleParams(**{**params.as_dict(), "baseline_quantile": 0.0})
    assert evaluate_negative(held, mean_rule, now=DAY, is_open=False, baseline=usual).action == "open"
    ev = negative_evidence(held, params, DAY, usual)
    assert ev.baseline == pytest.approx(0.55) and "this patient's usual high 55% + 10" in ev.threshold_text()
    assert (ev.baseline_text() or "").startswith("55% (the 90% quantile of its windows) over the 6 h before")
    few = minutes.copy()
    few[:, 0] = 10  # no window holds min_obs observations: no usual high, the mean applies
    assert usual_high(few, params) is None


# --------------------------------------------------------------------------- the baseline by part of the day


def brute_force(rows: list[dict[str, Any]], pid: int, first: int, end: int, night: bool) -> tuple[int, float]:
    """(n, sum of p_angry + p_sad) of the patient's rows in the minutes [first, end) of that part of the day."""
    n, mass = 0, 0.0
    for r in rows:
        m = minute_of(r["captured_at"])
        if r["patient_id"] == pid and first <= m < end and P.is_night(r["captured_at"]) == night:
            n += 1
            mass += r["p_angry"] + r["p_sad"]
    return n, mass


def test_incremental_baseline_by_part_of_the_day_equals_a_full_read(
    hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    """A day and a half of rows (sad-looking at night, happy by day), then ticks across 07:00 with new and late
    rows: the kept sums, a fresh read and the rows themselves agree, and each reads only its part of the day."""
    rng = random.Random(5)
    pid, bed = hospital.patients[0], hospital.beds[0]
    now = datetime(2026, 11, 25, 6, 50, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for _ in range(3000):
        at = now - timedelta(seconds=rng.uniform(0, 30 * 3600))
        rows += observation_rows(pid, bed, hospital.camera_id, at, 1, label="sad" if P.is_night(at) else "happy")
    add_observations(session_factory, rows)
    cache = BaselineCache()
    params = RuleParams(**{**P.as_dict(), "baseline_quantile": 0.8, "min_obs": 5})
    parts_seen = set()
    for _tick in range(30):
        new = []
        for _ in range(rng.randrange(0, 4)):
            late = rng.random() < 0.3
            at = now - timedelta(seconds=rng.uniform(600, 7200) if late else rng.uniform(0, 10))
            new += observation_rows(pid, bed, hospital.camera_id, at, 1, label=rng.choice(list(PROBS)))
        add_observations(session_factory, new)
        rows += new
        with session_factory() as s:
            kept = patient_baselines(s, now, {pid: params}, cache)[pid]
            full = patient_baselines(s, now, {pid: params})[pid]
        first, end = baseline_minutes(now, P.window_s, P.baseline_s)
        night = P.is_night(now)
        n, mass = brute_force(rows, pid, first, end, night)
        assert (kept.n, full.n) == (n, n) and kept.negative_mass == pytest.approx(mass) == full.negative_mass
        assert kept.part == full.part == ("night" if night else "day")
        per = np.zeros((end - first, 3))  # the usual high from the rows themselves
        for r in rows:
            m = minute_of(r["captured_at"])
            if r["patient_id"] == pid and first <= m < end and P.is_night(r["captured_at"]) == night:
                per[m - first] += (1, r["label4"] in ("angry", "sad"), r["p_angry"] + r["p_sad"])
        assert kept.high is not None and kept.high == pytest.approx(full.high) == usual_high(per, params)
        usual = kept.score("probability")
        assert usual == pytest.approx(0.85 if night else 0.05, abs=0.05)  # sad-looking at night, happy by day
        parts_seen.add(kept.part)
        now += timedelta(seconds=rng.choice([5, 30, 61]))
    assert parts_seen == {"night", "day"}


# --------------------------------------------------------------------------- the engine


@pytest.fixture
def quiet_cameras(session_factory: Callable[[], Session], hospital: Hospital) -> None:
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))


def mild_night(i: int) -> str:
    """A resting face that the model reads mildly negative at night: three readings in five sad (0.56)."""
    return "sad" if i % 5 in (1, 3, 4) else "relaxed"


def alerts_of(session_factory: Callable[[], Session], pid: int) -> list[Alert]:
    with session_factory() as s:
        return list(s.scalars(select(Alert).where(Alert.kind == "negative_emotion", Alert.patient_id == pid)))


def test_a_dim_resting_face_does_not_alert_at_night_an_episode_does_and_closed_eyes_are_set_aside(
    db_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session], quiet_cameras: None
) -> None:
    settings = db_settings.replace(
        negative_window_s=300,
        negative_min_obs=20,
        negative_open_share=0.52,
        negative_close_share=0.44,
        negative_baseline_s=86_400,
        negative_baseline_min_obs=100,
        negative_baseline_margin=0.2,
        negative_baseline_ceiling=0.6,
        negative_night_raise=0.0,
        negative_baseline_by_night=True,
        negative_baseline_quantile=0.0,  # the mean of the night minutes (the usual high: tested above)
        min_face_quality=0.45,
        retention_days=7,
    )
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    start = now - timedelta(hours=30)  # from 21:00 two days before: a whole previous night and day

    def rows(pid: int, bed: int, at: datetime, n: int, label: Any, quality: float = 0.8, every_s: float = 10.0):
        out = observation_rows(pid, bed, hospital.camera_id, at, n, every_s=every_s, label=label)
        for r in out:
            r["quality"] = quality
        return out

    history = []
    for index in (0, 1):  # the same person twice: bed 0 keeps resting, bed 1 has an episode at 02:50
        pid, bed = hospital.patients[index], hospital.beds[index]
        t = start
        while t < now - timedelta(minutes=10):
            night = settings_night(t)
            history += rows(pid, bed, t, 1, mild_night(int(t.timestamp()) // 20) if night else "happy")
            t += timedelta(seconds=20)
    # the last ten minutes: bed 0 rests; eyes closed at times: poor readings that look sad, in the window
    last = now - timedelta(minutes=10)
    poor = now - timedelta(seconds=295)
    history += rows(hospital.patients[0], hospital.beds[0], last, 60, mild_night, every_s=10.0)
    history += rows(hospital.patients[0], hospital.beds[0], poor, 25, "sad", quality=0.2)
    # the episode: sad and angry faces (several expressions), some resting, held a few minutes each
    episode = ["sad"] * 18 + ["angry"] * 18 + ["relaxed"] * 6 + ["sad"] * 18
    history += rows(hospital.patients[1], hospital.beds[1], last, 60, lambda i: episode[i], every_s=10.0)
    history += rows(hospital.patients[1], hospital.beds[1], poor, 12, "sad", quality=0.2)
    add_observations(session_factory, history)

    engine = AlertEngine(settings, session_factory, incremental=False)  # the cache's sums: tested above
    engine.tick(now, retention=False)
    assert alerts_of(session_factory, hospital.patients[0]) == []  # its dim resting face, against its own nights
    [alert] = alerts_of(session_factory, hospital.patients[1])
    evidence = NegativeEvidence.from_json(alert.evidence)
    assert evidence is not None and evidence.baseline_part == "night" and evidence.baseline_applied
    assert evidence.baseline == pytest.approx(0.6 * 0.85 + 0.4 * 0.13, abs=0.02)  # its usual night reading
    assert evidence.n_set_aside == 12 and evidence.score > evidence.open_at
    assert "12 readings set aside: face not clearly visible" in evidence.headline()
    with session_factory() as s:
        ev0 = engine_evidence(s, settings, now, hospital.patients[0], hospital.ward_id)
    assert ev0.n_set_aside == 25 and ev0.score < ev0.open_at  # eyes closed: set aside, counted
    assert ev0.score >= settings.negative_open_share  # it reads above the plain threshold

    # the plain baseline (every minute of the day before, mostly happy by day) alerts on the same resting face
    plain = AlertEngine(settings.replace(negative_baseline_by_night=False), session_factory, incremental=False)
    with session_factory() as s, s.begin():
        s.execute(update(Alert).values(state="resolved", resolved_at=now))
    plain.tick(now + timedelta(seconds=5), retention=False)
    assert len(alerts_of(session_factory, hospital.patients[0])) == 1


def settings_night(at: datetime) -> bool:
    return P.is_night(at)


def engine_evidence(s: Session, settings: Settings, now: datetime, pid: int, ward_id: int) -> NegativeEvidence:
    from areya.alerts.window import current_evidence

    return current_evidence(s, RuleParams.from_settings(settings), now, {pid: ward_id})[pid]
