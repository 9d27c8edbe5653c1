"""Alert test fixtures: the per-test database with a small hospital, observations on an injected clock,
a real embedded redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from alerts_helpers import Hospital, add_observations, create_hospital, observation_rows
from sqlalchemy.orm import Session

from areya.comms.redis_server import EmbeddedRedis
from areya.config import Settings


@pytest.fixture
def alert_settings(db_settings: Settings) -> Settings:
    return db_settings.replace(
        negative_window_s=600,
        negative_min_obs=20,
        negative_open_share=0.6,
        negative_close_share=0.4,
        resolve_period_s=300,
        escalate_after_s=900,
        camera_offline_s=60,
        retention_days=7,
        scheduler_tick_s=5,
        lock_ttl_s=15,
        # the per-patient baseline as these tests were written for (tests/alerts/test_alerts_night.py has the
        # usual high, the baseline by part of the day and the night's raise)
        negative_baseline_s=21_600,
        negative_baseline_min_obs=3600,
        negative_baseline_margin=0.25,
        negative_baseline_ceiling=0.6,
        negative_baseline_quantile=0.0,
        negative_baseline_by_night=False,
        negative_night_raise=0.0,
        negative_min_span=0.0,  # judged as soon as min_obs are there (test_alerts_rules.py has the span)
    )


@pytest.fixture
def hospital(session_factory: Callable[[], Session]) -> Hospital:
    return create_hospital(session_factory)


@pytest.fixture
def observe(session_factory: Callable[[], Session], hospital: Hospital) -> Callable[..., None]:
    """observe(patient_index, start, count, label=..., every_s=...) for the patients of ward A."""

    def add(index: int, start: datetime, count: int, **kwargs: Any) -> None:
        rows = observation_rows(
            hospital.patients[index], hospital.beds[index], hospital.camera_id, start, count, **kwargs
        )
        add_observations(session_factory, rows)

    return add


@pytest.fixture(scope="session")
def alerts_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded redis-server for the alert tests (each test starts from an empty database)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("alerts-redis")).start()
    yield server
    server.kill()  # test data only: no need for SHUTDOWN's save (and its client's reconnect retries)


@pytest.fixture
def rclient(alerts_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = alerts_redis.client(socket_timeout=5, socket_connect_timeout=2)
    client.flushall()
    yield client
    client.close()
