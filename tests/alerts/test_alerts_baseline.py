"""The per-patient baseline of the negative-emotion rule: the pure rule (thresholds raised by the patient's usual
score, plain without enough baseline observations, off = as before), the engine on a real database (hours of a
high usual level then an episode: one alert whose evidence carries the baseline), the incremental baseline sums,
the settings and per-patient overrides, and the evidence on the web surfaces."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from alerts_helpers import PROBS, T0, Hospital, add_observations, observation_rows, window_stats
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from areya.alerts.engine import AlertEngine
from areya.alerts.errors import Invalid
from areya.alerts.evidence import NegativeEvidence, negative_evidence
from areya.alerts.overrides import OverrideResolver, parse_override_values, set_rule_override
from areya.alerts.rules import (
    Baseline,
    ManualResolve,
    RuleParams,
    WindowStats,
    baseline_minutes,
    evaluate_negative,
    excluded_minutes,
    reopen_level,
    thresholds,
)
from areya.alerts.window import BaselineCache, current_evidence, patient_baselines
from areya.config import ConfigError, Settings
from areya.db.models import Alert, AlertEvent, Camera, Observation, RuleOverride

pytestmark = pytest.mark.postgres

Observe = Callable[..., None]
NOW = T0
# plain thresholds 0.52 / 0.44; the baseline: 2 h, at least 100 observations, +0.15, never above 0.8
P = RuleParams(
    window_s=300,
    min_obs=20,
    open_share=0.52,
    close_share=0.44,
    cooldown_s=1800,
    reopen_margin=0.15,
    baseline_s=7200,
    baseline_min_obs=100,
    baseline_margin=0.15,
    baseline_ceiling=0.8,
)
OFF = RuleParams(window_s=300, min_obs=20, open_share=0.52, close_share=0.44, cooldown_s=1800, reopen_margin=0.15)


def stats(n: int, score: float) -> WindowStats:
    return window_stats(n, score, NOW, 290)


def usual(score: float, n: int = 1000) -> Baseline:
    return Baseline(n, round(n * score), score * n)


# --------------------------------------------------------------------------- the pure rule


def test_thresholds_follow_the_usual_level_keep_the_gap_and_stop_at_the_ceiling() -> None:
    th = thresholds(P, usual(0.46))
    assert (th.open_at, th.close_below) == (pytest.approx(0.61), pytest.approx(0.53))  # 0.46 + 0.15, gap 0.08
    assert th.raised_by == pytest.approx(0.09) and th.baseline is not None and not th.capped
    low = thresholds(P, usual(0.20))  # 0.35 < 0.52: the plain thresholds, with the baseline known
    assert (low.open_at, low.close_below, low.raised_by) == (0.52, 0.44, 0.0) and low.baseline is not None
    high = thresholds(P, usual(0.75))  # 0.90 capped at 0.8
    assert (high.open_at, high.close_below, high.capped) == (pytest.approx(0.8), pytest.approx(0.72), True)
    assert thresholds(P, usual(0.46, n=99)) == thresholds(P, None) == thresholds(OFF, usual(0.46))
    assert (thresholds(P, None).open_at, thresholds(P, None).close_below) == (0.52, 0.44)
    # the labels measure reads the baseline's label share
    labels = RuleParams(
        open_share=0.3, close_share=0.2, measure="labels", baseline_s=3600, baseline_min_obs=10, baseline_margin=0.1
    )
    assert thresholds(labels, Baseline(100, 40, 10.0)).open_at == pytest.approx(0.5)


def test_a_patient_who_usually_looks_sad_opens_only_above_their_usual_level() -> None:
    high = usual(0.46)  # opens at 0.61 for this patient
    assert evaluate_negative(stats(60, 0.58), OFF, now=NOW, is_open=False).action == "open"  # plain rule
    decision = evaluate_negative(stats(60, 0.58), P, now=NOW, is_open=False, baseline=high)
    assert decision.action == "none" and "0.61" in decision.reason
    assert evaluate_negative(stats(60, 0.60), P, now=NOW, is_open=False, baseline=high).action == "none"
    assert evaluate_negative(stats(60, 0.62), P, now=NOW, is_open=False, baseline=high).action == "open"
    # too few baseline observations: the plain threshold applies
    assert evaluate_negative(stats(60, 0.58), P, now=NOW, is_open=False, baseline=usual(0.46, 99)).action == "open"
    assert evaluate_negative(stats(60, 0.58), P, now=NOW, is_open=False, baseline=None).action == "open"
    # an ordinary patient: as before
    calm = usual(0.15)
    assert evaluate_negative(stats(60, 0.53), P, now=NOW, is_open=False, baseline=calm).action == "open"
    assert evaluate_negative(stats(60, 0.51), P, now=NOW, is_open=False, baseline=calm).action == "none"


def test_the_close_threshold_moves_with_it_and_the_cooldown_starts_from_it() -> None:
    high = usual(0.46)  # closes below 0.53
    d = evaluate_negative(stats(60, 0.50), P, now=NOW, is_open=True, baseline=high)
    assert (d.action, d.below_close_since) == ("keep", NOW)  # below 0.53: the resolve period starts
    d = evaluate_negative(stats(60, 0.50), OFF, now=NOW, is_open=True)
    assert (d.action, d.below_close_since) == ("keep", None)  # plain: 0.50 is not below 0.44
    later = NOW + timedelta(seconds=P.resolve_period_s)
    assert (
        evaluate_negative(stats(60, 0.50), P, now=later, is_open=True, below_close_since=NOW, baseline=high).action
        == "resolve"
    )
    # the cool-down after a manual resolve: the higher of the raised threshold and the resolved level + margin
    resolved = ManualResolve(NOW, 0.40)
    assert reopen_level(P, resolved, NOW + timedelta(seconds=60), 0.61) == 0.61
    assert reopen_level(P, ManualResolve(NOW, 0.62), NOW + timedelta(seconds=60), 0.61) == pytest.approx(0.77)
    assert (
        evaluate_negative(
            stats(60, 0.65), P, now=NOW + timedelta(seconds=60), is_open=False, last_manual=resolved, baseline=high
        ).action
        == "open"
    )


def test_baseline_off_is_the_old_rule() -> None:
    rng = random.Random(3)
    for _ in range(300):
        s = stats(rng.randrange(0, 80), rng.random())
        kwargs = {
            "now": NOW,
            "is_open": rng.random() < 0.5,
            "below_close_since": NOW - timedelta(seconds=rng.randrange(0, 600)) if rng.random() < 0.5 else None,
        }
        assert evaluate_negative(s, OFF, **kwargs, baseline=usual(rng.random())) == evaluate_negative(s, OFF, **kwargs)


def test_baseline_period_and_left_out_alert_minutes() -> None:
    # the period: whole minutes, ending at the minute holding the start of the window
    now = T0 + timedelta(seconds=30)  # window (T0 - 270 s, T0 + 30 s]: starts in the minute T0 - 5 min
    first, end = baseline_minutes(now, 300, 7200)
    t0_minute = int(T0.timestamp()) // 60
    assert (first, end) == (t0_minute - 5 - 120, t0_minute - 5)
    # an alert: from the minute of (opened_at - window) to the minute it resolved, inclusive; open: to the end
    spans = [
        (T0 - timedelta(minutes=60), T0 - timedelta(minutes=40, seconds=30)),  # minutes -65 .. -41
        (T0 - timedelta(minutes=43), T0 - timedelta(minutes=30)),  # overlaps: merged
        (T0 - timedelta(minutes=200), T0 - timedelta(minutes=110)),  # clipped to the period
        (T0 - timedelta(minutes=300), T0 - timedelta(minutes=126)),  # before the period
        (T0 - timedelta(minutes=20), None),
    ]  # still open
    got = excluded_minutes(spans, 300, first, end)
    assert got == [(first, t0_minute - 109), (t0_minute - 65, t0_minute - 29), (t0_minute - 25, end)]
    assert excluded_minutes([(T0 + timedelta(minutes=5), None)], 300, first, end) == []


def test_evidence_says_the_alert_opened_on_the_patients_baseline() -> None:
    high = Baseline(5000, 2300, 0.46 * 5000, T0 - timedelta(hours=2), T0)
    ev = negative_evidence(stats(60, 0.65), P, NOW, high)
    assert (ev.open_at, ev.close_below) == (pytest.approx(0.61), pytest.approx(0.53))
    assert (ev.plain_open_at, ev.plain_close_below, ev.baseline) == (0.52, 0.44, pytest.approx(0.46))
    assert ev.score_text() == "Negative probability 65% (opens at 61%: this patient's usual 46% + 15)"
    assert ev.baseline_text() == (
        "46% over the 2 h before the window (5,000 observations, alert periods left out); "
        "thresholds raised 9 points from 52%"
    )
    public = ev.public()
    assert public["open_at"] == pytest.approx(0.61) and public["close_below"] == pytest.approx(0.53)
    assert public["baseline"] == {
        "applied": True,
        "usual": 0.46,
        "n_obs": 5000,
        "min_obs": 100,
        "period_s": 7200,
        "start": (T0 - timedelta(hours=2)).isoformat(),
        "end": T0.isoformat(),
        "margin": 0.15,
        "ceiling": 0.8,
        "plain_open_at": 0.52,
        "plain_close_below": 0.44,
        "raised_by": 0.09,
        "part": None,  # every minute of the period (not by part of the day)
        "quantile": 0.0,  # the mean score (not the usual high)
        "night_raise": 0.0,
    }
    assert "this patient's usual 46% + 15" in public["headline"]
    back = NegativeEvidence.from_json(ev.to_json())
    assert back is not None and back.public() == public and back.threshold_text() == ev.threshold_text()
    # capped, not known yet, off
    low = negative_evidence(stats(60, 0.6), P, NOW, usual(0.2))
    assert low.threshold_text() == "opens at 52%" and low.baseline_text() == (
        "20% over the 2 h before the window (1,000 observations, alert periods left out); + 15 is below 52%: "
        "plain thresholds"
    )
    capped = negative_evidence(stats(60, 0.9), P, NOW, usual(0.75))
    assert capped.threshold_text() == "opens at 80%: this patient's usual 75% + 15, capped at 80%"
    young = negative_evidence(stats(60, 0.6), P, NOW, usual(0.46, n=40))
    assert young.threshold_text() == "opens at 52%" and young.baseline_text() == (
        "not known yet: 40 of 100 observations in the 2 h before the window (alert periods left out); plain thresholds"
    )
    assert young.public()["baseline"]["applied"] is False
    off = negative_evidence(stats(60, 0.6), OFF, NOW, high)
    assert off.public()["baseline"] is None and off.baseline_text() is None and off.threshold_text() == "opens at 52%"
    legacy = NegativeEvidence.from_json({"share": 0.7, "open_share": 0.6, "close_share": 0.4, "n_obs": 30})
    assert legacy is not None and legacy.baseline_text() is None and legacy.threshold_text() == "opens at 60%"


# --------------------------------------------------------------------------- settings and overrides


def test_settings_validation(settings: Settings) -> None:
    assert settings.replace(negative_baseline_s="off").negative_baseline_s == 0
    assert settings.replace(negative_baseline_s="0").negative_baseline_s == 0
    assert settings.replace(negative_baseline_s="10800").negative_baseline_s == 10800
    for key, value, message in [
        ("negative_baseline_s", "90", "AREYA_NEGATIVE_BASELINE_S: must be 0 / off or whole minutes"),
        ("negative_baseline_s", "21601", "whole minutes in \\[600, 86400\\]"),
        ("negative_baseline_s", "maybe", "AREYA_NEGATIVE_BASELINE_S: must be an integer"),
        ("negative_baseline_min_obs", "0", "AREYA_NEGATIVE_BASELINE_MIN_OBS: must be an integer in \\[1,"),
        ("negative_baseline_margin", "1.5", "AREYA_NEGATIVE_BASELINE_MARGIN: must be a number in \\[0, 1\\]"),
        ("negative_baseline_ceiling", "0", "AREYA_NEGATIVE_BASELINE_CEILING: must be a number in \\(0, 1\\]"),
    ]:
        with pytest.raises(ConfigError, match=message):
            settings.replace(**{key: value})
    with pytest.raises(ConfigError, match="AREYA_NEGATIVE_BASELINE_S: the baseline period and the window must fit"):
        settings.replace(retention_days=1, negative_baseline_s=86_400)
    params = RuleParams.from_settings(
        settings.replace(
            negative_baseline_s=3600,
            negative_baseline_margin=0.3,
            negative_baseline_min_obs=50,
            negative_baseline_ceiling=0.7,
        )
    )
    assert (params.baseline_s, params.baseline_margin, params.baseline_min_obs, params.baseline_ceiling) == (
        3600,
        0.3,
        50,
        0.7,
    )
    assert RuleParams.from_settings(settings.replace(negative_baseline_s="off")).baseline_s == 0
    with pytest.raises(ValueError, match="baseline"):
        RuleParams(baseline_s=90)


def test_per_patient_and_ward_overrides_of_the_baseline(
    hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    assert parse_override_values({"negative_baseline_s": "off", "negative_baseline_margin": "0.3"}) == {
        "negative_baseline_s": 0,
        "negative_baseline_margin": 0.3,
    }
    with pytest.raises(Invalid, match="negative_baseline_s"):
        parse_override_values({"negative_baseline_s": 100})
    with pytest.raises(Invalid, match="negative_baseline_ceiling"):
        parse_override_values({"negative_baseline_ceiling": 1.2})
    base = P
    with session_factory() as s, s.begin():
        set_rule_override(s, {"negative_baseline_margin": 0.25}, ward_id=hospital.ward_id, base=base)
        set_rule_override(s, {"negative_baseline_s": "off"}, patient_id=hospital.patients[1], base=base)
        set_rule_override(
            s,
            {"negative_baseline_s": 14_400, "negative_baseline_ceiling": 0.7},
            patient_id=hospital.patients[2],
            base=base,
        )
    with session_factory() as s:
        resolver = OverrideResolver(base, list(s.scalars(select(RuleOverride))))
    p0, p1, p2 = (resolver.params(hospital.ward_id, pid) for pid in hospital.patients)
    assert (p0.baseline_s, p0.baseline_margin) == (7200, 0.25)  # the ward's margin
    assert p1.baseline_s == 0 and p1.baseline_margin == 0.25  # this patient: off
    assert (p2.baseline_s, p2.baseline_ceiling, p2.baseline_margin) == (14_400, 0.7, 0.25)
    assert resolver.params(hospital.other_ward_id, hospital.other_patient) == base


# --------------------------------------------------------------------------- the engine on a real database


@pytest.fixture
def base_settings(alert_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session]) -> Settings:
    """Window 10 min (20 observations), plain 0.55 / 0.40; baseline 2 h, >= 600 observations, +0.15, max 0.8."""
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))
    return alert_settings.replace(
        negative_measure="probability",
        negative_open_share=0.55,
        negative_close_share=0.40,
        negative_baseline_s=7200,
        negative_baseline_min_obs=600,
        negative_baseline_margin=0.15,
        negative_baseline_ceiling=0.8,
        negative_cooldown_s=1800,
    )


def sad_looking(i: int) -> str:
    """60 % sad, 40 % relaxed: Negative probability 0.6 * 0.85 + 0.4 * 0.13 = 0.562, above the plain 0.55."""
    return "relaxed" if i % 5 in (0, 3) else "sad"


def negative(label: str) -> float:
    return PROBS[label][0] + PROBS[label][3]


def alerts_of(session_factory: Callable[[], Session], patient_id: int) -> list[Alert]:
    with session_factory() as s:
        return list(
            s.scalars(
                select(Alert).where(Alert.kind == "negative_emotion", Alert.patient_id == patient_id).order_by(Alert.id)
            )
        )


def opening_note(session_factory: Callable[[], Session], alert: Alert) -> str:
    with session_factory() as s:
        return s.scalar(select(AlertEvent.note).where(AlertEvent.alert_id == alert.id, AlertEvent.to_state == "firing"))


def test_engine_raises_the_threshold_of_a_patient_who_usually_looks_sad(
    base_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session], observe: Observe
) -> None:
    """Three hours at a high usual level: no alert on it (the plain rule would open one), then an episode opens
    exactly one, whose evidence carries the baseline; an ordinary patient alerts on an episode as before; a
    patient whose override turns the baseline off gets the old rule."""
    with session_factory() as s, s.begin():
        set_rule_override(s, {"negative_baseline_s": "off"}, patient_id=hospital.patients[2])
    start = T0 - timedelta(hours=3)
    usual_count = 3 * 720 - 120  # every 5 s up to T0 - 10 min
    observe(0, start, usual_count, label=sad_looking)
    observe(1, start, usual_count, label="happy")
    observe(2, start, usual_count, label=sad_looking)
    engine = AlertEngine(base_settings, session_factory)

    before = T0 - timedelta(minutes=10)  # the window holds the usual level only
    report = engine.tick(before, retention=False)
    assert report.opened == 1 and alerts_of(session_factory, hospital.patients[0]) == []
    [plain] = alerts_of(session_factory, hospital.patients[2])  # baseline off: opens at 0.55 on the usual level
    assert plain.evidence["baseline"] is None and plain.evidence["open_at"] == 0.55
    # the baseline the rule used for patient 0, computed here from the rows: the whole minutes of the 2 h ending at
    # the minute holding the window's start (T0 - 20 min)
    period_end = T0 - timedelta(minutes=20)
    labels = [
        sad_looking(i)
        for i in range(usual_count)
        if period_end - timedelta(hours=2) <= start + timedelta(seconds=5 * i) < period_end
    ]
    expected = sum(negative(lab) for lab in labels) / len(labels)
    with session_factory() as s:
        ev = current_evidence(
            s, RuleParams.from_settings(base_settings), before, {hospital.patients[0]: hospital.ward_id}
        )[hospital.patients[0]]
    assert ev.baseline_n == len(labels) == 1440 and ev.baseline == pytest.approx(expected)
    assert ev.open_at == pytest.approx(expected + 0.15) and ev.score < ev.open_at
    assert ev.close_below == pytest.approx(0.40 + expected + 0.15 - 0.55)

    # an episode: ten minutes of sad faces for patients 0 and 1
    observe(0, before + timedelta(seconds=5), 120, label="sad")
    observe(1, before + timedelta(seconds=5), 120, label="sad")
    engine.tick(T0, retention=False)
    [alert] = alerts_of(session_factory, hospital.patients[0])
    evidence = NegativeEvidence.from_json(alert.evidence)
    assert evidence is not None and evidence.baseline_applied and evidence.score == pytest.approx(0.85)
    assert evidence.open_at == pytest.approx(evidence.baseline + 0.15) and evidence.plain_open_at == 0.55
    assert evidence.baseline_n >= 1440 and evidence.baseline == pytest.approx(expected, abs=0.01)
    assert alert.evidence["baseline"]["applied"] is True and alert.evidence["baseline"]["period_s"] == 7200
    assert "this patient's usual 56% + 15" in opening_note(session_factory, alert)
    [ordinary] = alerts_of(session_factory, hospital.patients[1])  # usual 0.05 + 0.15 < 0.55: the plain threshold
    normal = NegativeEvidence.from_json(ordinary.evidence)
    assert normal is not None and normal.baseline_applied and normal.raised_by == 0.0 and normal.open_at == 0.55
    assert normal.baseline == pytest.approx(negative("happy"))
    assert "usual" not in opening_note(session_factory, ordinary)
    # later ticks while it lasts: still exactly one alert each
    observe(0, T0 + timedelta(seconds=5), 60, label="sad")
    for k in range(1, 7):
        assert engine.tick(T0 + timedelta(seconds=50 * k), retention=False).opened == 0


def test_an_open_alert_does_not_become_the_baseline(
    base_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session], observe: Observe
) -> None:
    """A long episode: while its alert is open, its minutes stay out of the baseline, so the close threshold does
    not creep up with it and the alert does not resolve while the patient is still sad."""
    start = T0 - timedelta(hours=2, minutes=10)
    observe(0, start, 2 * 720, label="relaxed")  # usual 0.13 up to T0 - 10 min
    observe(0, T0 - timedelta(minutes=10) + timedelta(seconds=5), 120, label="sad")
    engine = AlertEngine(base_settings, session_factory)
    engine.tick(T0, retention=False)
    [alert] = alerts_of(session_factory, hospital.patients[0])
    # three more hours of sadness, ticks every 5 minutes
    now = T0
    for _ in range(36):
        observe(0, now + timedelta(seconds=5), 60, label="sad")
        now += timedelta(minutes=5)
        engine.tick(now, retention=False)
    assert [a.state for a in alerts_of(session_factory, hospital.patients[0])] == [alert.state] == ["firing"]
    params = RuleParams.from_settings(base_settings)
    with session_factory() as s:
        baseline = patient_baselines(s, now, {hospital.patients[0]: params})[hospital.patients[0]]
    assert baseline.n == 0  # the last 2 h before the window were all inside the alert (from one window before it)
    # ... whereas counted in, the episode would be the patient's usual level
    with session_factory() as s, s.begin():
        s.execute(update(Alert).values(opened_at=now, resolved_at=None))  # pretend it opened just now
    with session_factory() as s:
        counted = patient_baselines(s, now, {hospital.patients[0]: params})[hospital.patients[0]]
    assert counted.n == 1440 and counted.score("probability") == pytest.approx(negative("sad"))


# --------------------------------------------------------------------------- incremental sums


def brute_force(
    rows: list[dict], patient_id: int, first: int, end: int, left_out: list[tuple[int, int]]
) -> tuple[int, int, float]:
    n = neg = 0
    mass = 0.0
    for r in rows:
        minute = int(r["captured_at"].timestamp()) // 60
        if r["patient_id"] != patient_id or not first <= minute < end or any(a <= minute < b for a, b in left_out):
            continue
        n += 1
        neg += r["label4"] in ("angry", "sad")
        mass += r["p_angry"] + r["p_sad"]
    return n, neg, mass


@pytest.mark.parametrize(
    ("in_list_max", "budget_s"),
    [(50, None), (1, None), (50, 0.0)],
    ids=["in-list", "all-patients", "chunk-per-refresh"],
)
def test_incremental_baseline_sums_equal_a_full_read(
    hospital: Hospital,
    session_factory: Callable[[], Session],
    in_list_max: int,
    budget_s: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tick after tick with late rows, a longer period, patients coming and going and the clock stepping back, the
    kept sums equal a fresh read and a computation from the rows themselves (patients picked in SQL, or, for many
    patients, all read and theirs kept; the older minutes read at once, or a chunk per refresh: a baseline is
    known once its whole period is read)."""
    monkeypatch.setattr("areya.alerts.window.IN_LIST_MAX", in_list_max)
    rng = random.Random(11)
    cache = BaselineCache(forget_s=120, load_budget_s=budget_s, chunk_minutes=4)
    known = 0
    patients = list(zip(hospital.patients, hospital.beds, strict=True))
    all_rows: list[dict] = []
    history = []
    for pid, bed in patients:  # an hour of history
        for _k in range(200):
            history += observation_rows(
                pid,
                bed,
                hospital.camera_id,
                T0 - timedelta(seconds=rng.uniform(0, 3600)),
                1,
                label=rng.choice(list(PROBS)),
            )
    add_observations(session_factory, history)
    all_rows += history
    now = T0
    window_s, baseline_s = 300, 1800
    for tick in range(90):
        rows = []
        for pid, bed in patients:
            for _ in range(rng.randrange(0, 5)):
                late = rng.random() < 0.2
                at = now - timedelta(seconds=rng.uniform(400, 2400) if late else rng.uniform(0, 10))
                rows += observation_rows(pid, bed, hospital.camera_id, at, 1, label=rng.choice(list(PROBS)))
        add_observations(session_factory, rows)
        all_rows += rows
        if tick == 40:
            baseline_s = 3600  # a longer period than the kept minutes: read again
        if tick == 70:
            now -= timedelta(minutes=3)  # the clock stepped back: the kept minutes still serve
        # the web asks for some patients only (the third is forgotten after forget_s, then read again)
        asked = hospital.patients[:2] if 20 <= tick < 35 or tick % 7 == 0 else hospital.patients
        first, end = baseline_minutes(now, window_s, baseline_s)
        left_out = {asked[0]: [(first + 3, first + 7), (end - 2, end)]}
        spans = {pid: (first, end) for pid in asked}
        with session_factory() as s:
            cache.refresh(s, first, end, asked, now=now.timestamp())
            kept = cache.sums(spans, left_out)
            fresh = BaselineCache()
            fresh.refresh(s, first, end, asked, now=now.timestamp())
            full = fresh.sums(spans, left_out)
        assert set(full) == set(asked) and (set(kept) == set(asked) or (budget_s is not None and not kept))
        known += bool(kept)
        for pid in asked:
            n, neg, mass = brute_force(all_rows, pid, first, end, left_out.get(pid, []))
            for got in (kept.get(pid), full[pid]):
                if got is not None:
                    assert (round(got[0]), round(got[1])) == (n, neg) and got[2] == pytest.approx(mass), (tick, pid)
        now += timedelta(seconds=rng.choice([5, 5, 5, 12, 61, 130]))
    assert cache.full_loads == 2  # the first refresh and the longer period
    assert known == 90 if budget_s is None else 60 < known < 90  # a chunk of 4 minutes per refresh
    with pytest.raises(RuntimeError):
        cache.sums({hospital.other_patient: (first, end)})


def test_a_cold_start_reads_the_period_over_several_refreshes(
    hospital: Hospital, session_factory: Callable[[], Session], observe: Observe
) -> None:
    """With a time budget (the scheduler's), the hours of a cold start are read a chunk per tick, newest first;
    meanwhile the baseline is not known (the plain thresholds apply), then it is the full read's."""
    observe(0, T0 - timedelta(hours=2, minutes=30), 1800, label=sad_looking)
    params = {hospital.patients[0]: P}  # 2 h period
    cache = BaselineCache(load_budget_s=0.0, chunk_minutes=30)
    with session_factory() as s:
        full = patient_baselines(s, T0, params)
        steps = [patient_baselines(s, T0 + timedelta(seconds=5 * k), params, cache) for k in range(5)]
    assert steps[:3] == [{}, {}, {}] and cache.full_loads == 1
    assert steps[3] == steps[4] == full and full[hospital.patients[0]].n > 600 and not cache.loading


def test_engine_without_the_incremental_cache_agrees(
    base_settings: Settings, hospital: Hospital, session_factory: Callable[[], Session], observe: Observe
) -> None:
    start = T0 - timedelta(hours=2, minutes=30)
    observe(0, start, 1800, label=sad_looking)
    params = {pid: RuleParams.from_settings(base_settings) for pid in hospital.patients}
    cache = BaselineCache()
    for k in range(12):
        now = T0 + timedelta(seconds=37 * k)
        with session_factory() as s:
            kept = patient_baselines(s, now, params, cache)
            assert kept == patient_baselines(s, now, params)
        assert kept[hospital.patients[0]].n > 600 and kept[hospital.patients[1]].n == 0
        with session_factory() as s, s.begin():  # a late row for the period
            s.add(
                Observation(
                    **observation_rows(
                        hospital.patients[0], hospital.beds[0], None, now - timedelta(minutes=40), 1, label="sad"
                    )[0]
                )
            )


# --------------------------------------------------------------------------- what the surfaces show


def test_tile_inbox_and_api_show_the_raised_threshold(
    base_settings: Settings,
    hospital: Hospital,
    session_factory: Callable[[], Session],
    observe: Observe,
    engine: object,
    rclient: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from areya import admin
    from areya.webapp import create_app
    from areya.webapp.tokens import create_token

    start = T0 - timedelta(hours=3)
    observe(0, start, 3 * 720 - 120, label=sad_looking)
    observe(0, T0 - timedelta(minutes=10) + timedelta(seconds=5), 120, label="sad")
    report = AlertEngine(base_settings, session_factory).tick(T0, retention=False)
    [notice] = [n for n in report.notices if n.type == "alert.opened"]
    [alert] = alerts_of(session_factory, hospital.patients[0])
    summary = NegativeEvidence.from_json(alert.evidence).public()  # type: ignore[union-attr]
    assert notice.extra["evidence"] == summary and summary["baseline"]["applied"] is True
    threshold = NegativeEvidence.from_json(alert.evidence).threshold_text()  # type: ignore[union-attr]
    assert threshold.startswith("opens at 71%: this patient's usual 56% + 15")

    for module in (
        "areya.webapp.views.api",
        "areya.webapp.views.ward",
        "areya.webapp.views.alerts",
        "areya.webapp.views.patients",
    ):
        monkeypatch.setattr(f"{module}.utcnow", lambda: T0, raising=False)
    with session_factory() as s, s.begin():
        admin.add_user(s, "dr-usual", "doctor", "correct-horse-baseline-1", ["Ward A"])
        from areya.db.models import User

        token = create_token(s, s.scalar(select(User).where(User.username == "dr-usual")), "baseline-test")[1]
    app = create_app(base_settings, engine=engine, redis_client=rclient)
    app.config["TESTING"] = True
    web = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert web.get(f"/api/alerts/{alert.id}", headers=bearer).get_json()["evidence"]["baseline"] == summary["baseline"]
    tiles = web.get(f"/api/wards/{hospital.ward_id}/tiles", headers=bearer).get_json()["tiles"]
    [tile] = [t for t in tiles if t["patient_id"] == hospital.patients[0]]
    assert tile["alert_evidence"] == summary
    # the tile's current window reads the same baseline as the rule (same instant, same observations)
    assert tile["window"]["open_at"] == pytest.approx(summary["open_at"])
    assert tile["window"]["baseline"] == summary["baseline"]

    import re

    csrf = re.search(r'name="csrf-token" content="([^"]+)"', web.get("/login").get_data(as_text=True))
    assert csrf is not None
    web.post(
        "/login", data={"username": "dr-usual", "password": "correct-horse-baseline-1", "csrf_token": csrf.group(1)}
    )
    inbox = web.get("/alerts").get_data(as_text=True)
    card = inbox[inbox.index(f'id="alert-{alert.id}"') :]
    card = card[: card.index("</article>")]
    assert "opens at 71%: this patient&#39;s usual 56% + 15" in card and "Usual level" in card
    page = web.get(f"/wards/{hospital.ward_id}").get_data(as_text=True)
    tile_html = page[page.index(f'id="tile-{hospital.beds[0]}"') :]
    tile_html = tile_html[: tile_html.index("</article>")]
    assert tile_html.count("opens at 71%: this patient&#39;s usual 56% + 15") == 2  # now and at alert


def test_usual_level_at_a_given_instant_is_reproducible(
    hospital: Hospital, session_factory: Callable[[], Session]
) -> None:
    """Same database, same instant: the scheduler's cache, a fresh read and the web's cache give one baseline."""
    rows = observation_rows(
        hospital.patients[0], hospital.beds[0], None, T0 - timedelta(hours=1), 600, label=sad_looking
    )
    add_observations(session_factory, rows)
    params = {hospital.patients[0]: P}
    when: datetime = T0
    with session_factory() as s:
        a = patient_baselines(s, when, params, BaselineCache())
        b = patient_baselines(s, when, params)
        c = current_evidence(s, P, when, {hospital.patients[0]: hospital.ward_id})[hospital.patients[0]]
    assert a == b and c.baseline_n == a[hospital.patients[0]].n > 0
