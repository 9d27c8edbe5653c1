"""Pure rule evaluation (no database): thresholds, minimum evidence, hysteresis, snooze, escalation, cameras."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alerts_helpers import window_stats

from areya.alerts.errors import Invalid
from areya.alerts.evidence import negative_evidence
from areya.alerts.overrides import OverrideResolver, apply_values, parse_override_values
from areya.alerts.rules import (
    NEGATIVE_LABELS,
    RuleParams,
    WindowStats,
    camera_is_offline,
    escalation_due,
    evaluate_negative,
    pipeline_is_stalled,
)
from areya.db.models import RuleOverride
from areya.emotion.schemes import NEGATIVE_4

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
P = RuleParams(window_s=600, min_obs=20, open_share=0.6, close_share=0.4, resolve_period_s=300, escalate_after_s=900)


def stats(n: int, share: float) -> WindowStats:
    """n observations whose mean negative mass is ``share`` (labels: the negative ones first)."""
    return window_stats(n, share, NOW, 590)


def test_negative_labels_match_the_emotion_scheme() -> None:
    assert set(NEGATIVE_LABELS) == set(NEGATIVE_4)


def test_opens_at_the_threshold_with_enough_evidence() -> None:
    assert evaluate_negative(stats(20, 0.6), P, now=NOW, is_open=False).action == "open"
    assert evaluate_negative(stats(20, 0.59), P, now=NOW, is_open=False).action == "none"
    assert evaluate_negative(stats(19, 1.0), P, now=NOW, is_open=False).action == "none"  # minimum evidence
    assert evaluate_negative(None, P, now=NOW, is_open=False).action == "none"


def test_min_span_waits_until_the_observations_span_enough_of_the_window() -> None:
    """With min_span, strong evidence from the first minute after a camera starts (or the patient is seen again)
    does not open an alert until the observations reach back min_span x window_s; an open alert is not held by it."""
    from dataclasses import replace

    p = replace(P, min_span=0.5)  # 300 s of the 600 s window
    young = window_stats(60, 0.95, NOW, 120)
    d = evaluate_negative(young, p, now=NOW, is_open=False)
    assert d.action == "none" and "span 120 s" in d.reason and "300 s needed" in d.reason
    assert evaluate_negative(window_stats(60, 0.95, NOW, 300), p, now=NOW, is_open=False).action == "open"
    assert evaluate_negative(young, P, now=NOW, is_open=False).action == "open"  # 0: as soon as min_obs are there
    first_unknown = replace(young, first_at=None)
    assert evaluate_negative(first_unknown, p, now=NOW, is_open=False).action == "open"
    assert evaluate_negative(young, p, now=NOW, is_open=True).action == "keep"
    with pytest.raises(ValueError):
        replace(P, min_span=1.5)


def test_snooze_blocks_opening_only() -> None:
    assert evaluate_negative(stats(30, 0.9), P, now=NOW, is_open=False, snoozed=True).action == "none"
    closing = evaluate_negative(
        stats(30, 0.1), P, now=NOW, is_open=True, snoozed=True, below_close_since=NOW - timedelta(seconds=300)
    )
    assert closing.action == "resolve"


def test_open_alert_never_duplicates_and_hysteresis() -> None:
    # between the thresholds: stays open, no resolve timer
    d = evaluate_negative(stats(30, 0.5), P, now=NOW, is_open=True)
    assert (d.action, d.below_close_since) == ("keep", None)
    # still above open share: keep (never a second "open")
    assert evaluate_negative(stats(30, 0.9), P, now=NOW, is_open=True).action == "keep"
    # below close: the timer starts now
    d = evaluate_negative(stats(30, 0.2), P, now=NOW, is_open=True)
    assert (d.action, d.below_close_since) == ("keep", NOW)
    # ... and resolves once the resolve period has passed
    later = NOW + timedelta(seconds=299)
    assert evaluate_negative(stats(30, 0.2), P, now=later, is_open=True, below_close_since=NOW).action == "keep"
    later = NOW + timedelta(seconds=300)
    d = evaluate_negative(stats(30, 0.2), P, now=later, is_open=True, below_close_since=NOW)
    assert d.action == "resolve"
    # a tick back above close share, or without enough evidence, restarts the period
    assert (
        evaluate_negative(stats(30, 0.45), P, now=later, is_open=True, below_close_since=NOW).below_close_since is None
    )
    assert evaluate_negative(stats(5, 0.0), P, now=later, is_open=True, below_close_since=NOW).below_close_since is None


def test_confidence_weighting() -> None:
    # 20 observations labelled "sad" but unsure (p_angry + p_sad = 0.45 each): label share 1.0, share 0.45
    unsure = WindowStats(
        1,
        20,
        {"angry": 0, "happy": 0, "relaxed": 0, "sad": 20},
        0.45 * 20,
        {"angry": 0.0, "happy": 0.0, "relaxed": 0.55 * 20, "sad": 0.45 * 20},
        NOW,
        NOW,
    )
    assert unsure.label_share == 1.0 and unsure.share == pytest.approx(0.45)
    assert evaluate_negative(unsure, P, now=NOW, is_open=False).action == "none"
    evidence = negative_evidence(unsure, P, NOW).to_json()
    assert evidence["counts"] == {"angry": 0, "happy": 0, "relaxed": 0, "sad": 20}
    assert evidence["share"] == 0.45 and evidence["label_share"] == 1.0 and evidence["n_obs"] == 20
    assert evidence["window_s"] == 600 and evidence["first_at"] == NOW.isoformat()


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="close share"):
        RuleParams(open_share=0.4, close_share=0.4)
    with pytest.raises(ValueError):
        RuleParams(min_obs=0)


def test_escalation_due() -> None:
    opened = NOW - timedelta(seconds=900)
    assert escalation_due(state="firing", opened_at=opened, last_notified_at=opened, escalate_after_s=900, now=NOW)
    assert not escalation_due(
        state="firing", opened_at=opened, last_notified_at=NOW - timedelta(seconds=10), escalate_after_s=900, now=NOW
    )
    assert not escalation_due(
        state="acknowledged", opened_at=opened, last_notified_at=opened, escalate_after_s=900, now=NOW
    )
    assert not escalation_due(state="firing", opened_at=opened, last_notified_at=opened, escalate_after_s=0, now=NOW)
    assert not escalation_due(
        state="firing", opened_at=opened, last_notified_at=opened, escalate_after_s=900, now=NOW, snoozed=True
    )


def test_camera_rules() -> None:
    created = NOW - timedelta(days=1)
    assert not camera_is_offline(last_frame_at=NOW - timedelta(seconds=60), created_at=created, now=NOW, offline_s=60)
    assert camera_is_offline(last_frame_at=NOW - timedelta(seconds=61), created_at=created, now=NOW, offline_s=60)
    assert camera_is_offline(last_frame_at=None, created_at=created, now=NOW, offline_s=60)
    assert not camera_is_offline(last_frame_at=None, created_at=NOW - timedelta(seconds=5), now=NOW, offline_s=60)
    kw = {"online_since": created, "now": NOW, "stall_s": 300}
    assert pipeline_is_stalled(
        camera_online=True, had_observations=True, last_observation_at=NOW - timedelta(seconds=301), **kw
    )
    assert not pipeline_is_stalled(
        camera_online=True, had_observations=True, last_observation_at=NOW - timedelta(seconds=100), **kw
    )
    assert not pipeline_is_stalled(
        camera_online=False, had_observations=True, last_observation_at=NOW - timedelta(seconds=400), **kw
    )
    assert not pipeline_is_stalled(camera_online=True, had_observations=False, last_observation_at=None, **kw)
    kw["online_since"] = NOW - timedelta(seconds=100)  # just came back: give it time
    assert not pipeline_is_stalled(
        camera_online=True, had_observations=True, last_observation_at=NOW - timedelta(seconds=400), **kw
    )


def test_override_values_and_precedence() -> None:
    assert parse_override_values({"negative_min_obs": "5", "negative_open_share": 0.8}) == {
        "negative_min_obs": 5,
        "negative_open_share": 0.8,
    }
    with pytest.raises(Invalid, match="unknown rule setting"):
        parse_override_values({"web_port": 1})
    with pytest.raises(Invalid, match="negative_open_share"):
        parse_override_values({"negative_open_share": 1.5})
    with pytest.raises(ValueError):
        apply_values(P, {"negative_close_share": 0.7})  # above the open share
    rows = [
        RuleOverride(id=1, ward_id=10, settings={"negative_min_obs": 5, "negative_open_share": 0.7}),
        RuleOverride(id=2, patient_id=99, settings={"negative_open_share": 0.9}),
        RuleOverride(id=3, ward_id=11, settings={"negative_close_share": 0.65}),  # invalid with open 0.6: ignored
    ]
    resolver = OverrideResolver(P, rows)
    assert resolver.params(None, 1) == P
    assert resolver.params(10, 1) == RuleParams(**{**P.as_dict(), "min_obs": 5, "open_share": 0.7})
    assert resolver.params(10, 99) == RuleParams(**{**P.as_dict(), "min_obs": 5, "open_share": 0.9})
    assert resolver.params(12, 99) == RuleParams(**{**P.as_dict(), "open_share": 0.9})
    assert resolver.params(11, 1) == P
