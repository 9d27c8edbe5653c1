"""The incremental window (WindowCache) gives exactly the full window query's answer, tick after tick,
with observations arriving late, from the future, and windows changing."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest
from alerts_helpers import T0, Hospital, add_observations, observation_rows
from sqlalchemy.orm import Session

from areya.alerts.window import WindowCache, last_observation_by_camera, window_stats

pytestmark = pytest.mark.postgres

LABELS = ("angry", "happy", "relaxed", "sad")


def same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for pid in a:
        x, y = a[pid], b[pid]
        assert (x.n, x.counts, x.first_at, x.last_at) == (y.n, y.counts, y.first_at, y.last_at), pid
        assert x.negative_mass == pytest.approx(y.negative_mass)
        for label in LABELS:
            assert x.prob_sums[label] == pytest.approx(y.prob_sums[label])


def test_incremental_equals_full_query(hospital: Hospital, session_factory: Callable[[], Session]) -> None:
    rng = random.Random(7)
    cache = WindowCache(bucket_s=10, slack_s=30, full_refresh_s=10**9)
    patients = list(zip(hospital.patients, hospital.beds, strict=True))
    now = T0
    windows = [600]
    for tick in range(120):
        # new observations: mostly recent, some late (captured minutes ago), some a little in the future
        rows = []
        for pid, bed in patients:
            for _ in range(rng.randrange(0, 6)):
                kind = rng.random()
                if kind < 0.8:
                    at = now - timedelta(seconds=rng.uniform(0, 8))
                elif kind < 0.95:
                    at = now - timedelta(seconds=rng.uniform(30, 700))  # late arrival
                else:
                    at = now + timedelta(seconds=rng.uniform(0, 20))  # a clock ahead
                rows += observation_rows(pid, bed, hospital.camera_id, at, 1, label=rng.choice(LABELS))
        add_observations(session_factory, rows)
        if tick == 60:
            windows = [600, 300]  # a shorter per-ward window appears
        if tick == 80:
            windows = [900]  # a longer one: full reload
        if tick == 100:
            now -= timedelta(seconds=40)  # clock stepped back: full reload
        with session_factory() as s:
            cache.refresh(s, now, max(windows))
            for w in windows:
                same(cache.window_stats(s, until=now, window_s=w), window_stats(s, until=now, window_s=w))
            cached, sql = (
                cache.last_observation_by_camera(until=now, lookback_s=max(windows)),
                last_observation_by_camera(s, until=now, lookback_s=max(windows)),
            )
            assert cached == sql  # observations arrive all the time: the latest is never in the boundary bucket
            subset = hospital.patients[:2]
            same(
                cache.window_stats(s, until=now, window_s=windows[0], patient_ids=subset),
                window_stats(s, until=now, window_s=windows[0], patient_ids=subset),
            )
        now += timedelta(seconds=rng.choice([5, 5, 5, 7.3, 12, 61]))
    assert cache.full_reloads == 3  # first tick, longer window, clock back


def test_cache_must_be_refreshed_for_the_time_asked(hospital: Hospital, session_factory: Callable[[], Session]) -> None:
    cache = WindowCache()
    with session_factory() as s:
        cache.refresh(s, T0, 600)
        with pytest.raises(RuntimeError):
            cache.window_stats(s, until=T0 + timedelta(seconds=5), window_s=600)
        with pytest.raises(RuntimeError):
            cache.window_stats(s, until=T0, window_s=900)
