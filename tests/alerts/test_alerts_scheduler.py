"""Scheduler: leader lock with two schedulers (one acts; standby takes over after expiry), pub/sub events,
the APScheduler job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import redis
from alerts_helpers import T0, Hospital, next_message
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from areya.alerts.lock import LOCK_KEY, LeaderLock
from areya.alerts.scheduler import AlertScheduler, read_heartbeat, start_scheduler
from areya.config import Settings
from areya.db.models import Alert, Camera
from areya.notify.dispatch import Notifier
from areya.notify.events import CHANNEL, EVENT_KEYS

pytestmark = pytest.mark.postgres

TTL_MS = 400


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def make_scheduler(
    alert_settings: Settings, engine: Engine, rclient: redis.Redis, session_factory: Callable[[], Session]
) -> Iterator[Callable[..., AlertScheduler]]:
    made: list[AlertScheduler] = []

    def make(owner: str, clock: Clock) -> AlertScheduler:
        notifier = Notifier(alert_settings, redis_client=rclient, session_factory=session_factory, background=False)
        sched = AlertScheduler(
            alert_settings,
            engine=engine,
            redis_client=rclient,
            notifier=notifier,
            clock=clock,
            owner=owner,
            lock_ttl_ms=TTL_MS,
        )
        made.append(sched)
        return sched

    yield make
    for sched in made:
        sched.stop()


@pytest.fixture
def sad_patient(hospital: Hospital, observe: Callable[..., None], session_factory: Callable[[], Session]) -> int:
    observe(0, T0 - timedelta(seconds=595), 240, label="sad")
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))
    return hospital.patients[0]


def test_only_the_leader_acts_and_a_standby_takes_over_after_expiry(
    make_scheduler: Callable[..., AlertScheduler],
    rclient: redis.Redis,
    sad_patient: int,
    session_factory: Callable[[], Session],
) -> None:
    clock = Clock(T0)
    active, standby = make_scheduler("active", clock), make_scheduler("standby", clock)
    for k in range(5):
        clock.at = T0 + timedelta(seconds=5 * k)
        assert active.tick() is not None
        assert standby.tick() is None
    assert rclient.get(LOCK_KEY) == b"active"
    with session_factory() as s:
        assert len(s.scalars(select(Alert).where(Alert.patient_id == sad_patient)).all()) == 1
    assert (active.ticks, standby.ticks) == (5, 0)

    # the active scheduler dies (stops renewing): the standby keeps standing by until the lock expires
    assert standby.tick() is None
    wait_for(lambda: rclient.pttl(LOCK_KEY) == -2, timeout=TTL_MS / 1000 * 5)
    assert standby.tick() is not None and rclient.get(LOCK_KEY) == b"standby"
    assert active.tick() is None  # the old leader came back: it is now the standby
    # a clean stop frees the lock at once
    standby.lock.release()
    assert active.tick() is not None


def test_lock_release_only_by_its_owner(rclient: redis.Redis) -> None:
    a = LeaderLock(rclient, ttl_ms=10_000, key="t:lock", owner="a")
    b = LeaderLock(rclient, ttl_ms=10_000, key="t:lock", owner="b")
    assert a.acquire() and not b.acquire()
    assert not b.release() and a.holder() == "a"
    assert a.acquire() and 9_000 < rclient.pttl("t:lock") <= 10_000  # renewed
    assert a.release() and b.acquire()


def test_events_are_published_on_the_channel(
    make_scheduler: Callable[..., AlertScheduler],
    rclient: redis.Redis,
    sad_patient: int,
    hospital: Hospital,
) -> None:
    pubsub = rclient.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    wait_for(lambda: rclient.pubsub_numsub(CHANNEL)[0][1] == 1)
    make_scheduler("only", Clock(T0)).tick()
    message = next_message(pubsub)
    pubsub.close()
    assert message is not None
    event = json.loads(message["data"])
    assert tuple(sorted(event)) == tuple(sorted(EVENT_KEYS))
    assert {k: event[k] for k in ("type", "ward_id", "patient_id", "kind", "severity", "state", "at")} == {
        "type": "alert.opened",
        "ward_id": hospital.ward_id,
        "patient_id": sad_patient,
        "kind": "negative_emotion",
        "severity": 2,
        "state": "firing",
        "at": T0.isoformat(),
    }
    assert isinstance(event["alert_id"], int)


def test_apscheduler_job_ticks_and_stops(
    alert_settings: Settings, engine: Engine, rclient: redis.Redis, hospital: Hospital
) -> None:
    settings = alert_settings.replace(scheduler_tick_s=0.05, lock_ttl_s=5)
    sched = start_scheduler(settings, engine=engine, redis_client=rclient, owner="bg")
    try:
        wait_for(lambda: sched.ticks >= 3)
        assert read_heartbeat(rclient)["owner"] == "bg"
    finally:
        sched.stop()
    assert rclient.get(LOCK_KEY) is None  # released on stop
    assert sched.failures == 0


def test_a_failing_tick_is_logged_and_retried(alert_settings: Settings, rclient: redis.Redis, tmp_path) -> None:
    broken = alert_settings.replace(database_url=f"sqlite:///{tmp_path / 'missing' / 'no-tables.db'}")
    sched = AlertScheduler(broken, redis_client=rclient, owner="broken")
    try:
        assert sched.safe_tick() is None and sched.failures == 1
    finally:
        sched.stop()


def test_a_tick_longer_than_the_lock_ttl_keeps_the_lock(
    make_scheduler: Callable[..., AlertScheduler], hospital: Hospital
) -> None:
    clock = Clock(T0)
    active, standby = make_scheduler("active", clock), make_scheduler("standby", clock)
    original = active.engine.tick
    standby_got_it: list[bool] = []

    def slow_tick(now: datetime, **kwargs: object) -> object:  # e.g. a cold cache on a big ward: 3 TTLs
        for _ in range(6):
            time.sleep(TTL_MS / 1000 / 2)
            standby_got_it.append(standby.lock.acquire())
        return original(now, **kwargs)

    active.engine.tick = slow_tick  # type: ignore[method-assign]
    assert active.tick() is not None
    assert standby_got_it == [False] * 6
