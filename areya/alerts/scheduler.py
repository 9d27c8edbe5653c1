"""``areya scheduler``: the APScheduler job that evaluates the alert rules every ``scheduler_tick_s``.

Several schedulers may run (one per host, for availability); only the holder of the Redis leader lock acts
(:mod:`areya.alerts.lock`), the others are warm standbys that take over ``lock_ttl_s`` after the active one
stops renewing.  Each acting tick writes a heartbeat hash (``areya:scheduler:heartbeat``: owner, time, tick
duration, counts) so that the dashboard can show when alert evaluation itself has stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis

from areya.alerts.engine import AlertEngine, TickReport
from areya.alerts.lock import LeaderLock
from areya.db.types import utcnow
from areya.notify.dispatch import Notifier

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "areya:scheduler:heartbeat"
JOB_ID = "areya-alert-tick"


class AlertScheduler:
    """Leader-locked alert evaluation: :meth:`tick` once, or :meth:`start` the APScheduler job."""

    def __init__(
        self,
        settings: Any,
        *,
        engine: Any = None,
        redis_client: redis.Redis | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        lock_ttl_ms: int | None = None,
    ) -> None:
        from areya.db.engine import create_db_engine, create_session_factory  # noqa: PLC0415

        self.settings = settings
        self._own_engine = engine is None
        self.db_engine = engine or create_db_engine(settings)
        self.session_factory = create_session_factory(self.db_engine)
        if redis_client is None:
            from areya.comms.redis_server import connect  # noqa: PLC0415

            redis_client = connect(settings)
        self.redis = redis_client
        self.clock = clock
        self.lock = LeaderLock(redis_client, ttl_ms=lock_ttl_ms or int(settings.lock_ttl_s * 1000), owner=owner)
        self.engine = AlertEngine(settings, self.session_factory, redis_client=redis_client)
        self.notifier = notifier or Notifier(
            settings, redis_client=redis_client, session_factory=self.session_factory, background=True
        )
        self._scheduler: Any = None
        self._tick_lock = threading.Lock()
        self.last_report: TickReport | None = None
        self.ticks = 0
        self.failures = 0

    @property
    def owner(self) -> str:
        return self.lock.owner

    def tick(self) -> TickReport | None:
        """One evaluation if this instance is (or becomes) the leader; None when standing by."""
        with self._tick_lock:
            if not self.lock.acquire():
                return None
            now = self.clock()
            with self._keeping_lock():
                report = self.engine.tick(now, retention=False)
                # a leader that lost the lock mid-tick still announces what it committed (the database holds
                # it), but logs the overlap
                if not self.lock.acquire():
                    log.warning("leader lock lost during a tick (tick took %.1fs)", report.seconds)
                self.notifier.notify(report.notices)
                if self.engine.retention_due(now):  # after the announcements: they never wait for it
                    report.retention = self.engine.run_retention(now)
            self.last_report = report
            self.ticks += 1
            self._heartbeat(report)
            if report.opened or report.resolved or report.escalated or report.camera_opened or report.camera_resolved:
                log.info("tick: %s", report.summary())
            return report

    @contextmanager
    def _keeping_lock(self) -> Iterator[None]:
        """Renew the lock every ttl/3 while a (long: cold cache, slow DB) tick runs, for at most 10 TTLs:
        a tick stuck longer than that lets a standby take over."""
        done = threading.Event()
        period = self.lock.ttl_ms / 3000.0
        deadline = time.monotonic() + 10 * self.lock.ttl_ms / 1000.0

        def renew() -> None:
            while not done.wait(period) and time.monotonic() < deadline:
                if not self.lock.acquire():
                    return

        keeper = threading.Thread(target=renew, name="areya-lock-keeper", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join(timeout=5)

    def safe_tick(self) -> TickReport | None:
        """:meth:`tick` that logs and counts errors instead of raising (the APScheduler job)."""
        try:
            return self.tick()
        except Exception:  # noqa: BLE001 - the database or Redis is down: try again next tick
            self.failures += 1
            log.exception("alert tick failed (%d failure(s) so far); retrying next tick", self.failures)
            return None

    def _heartbeat(self, report: TickReport) -> None:
        try:
            self.redis.hset(
                HEARTBEAT_KEY,
                mapping={
                    "owner": self.owner,
                    "at": f"{time.time():.3f}",
                    "tick_at": report.at.isoformat(),
                    "seconds": f"{report.seconds:.4f}",
                    "patients": report.patients,
                    "opened": report.opened,
                    "resolved": report.resolved,
                    "escalated": report.escalated,
                },
            )
            self.redis.expire(HEARTBEAT_KEY, max(60, int(self.settings.scheduler_tick_s * 10)))
        except redis.RedisError as exc:
            log.debug("heartbeat not written: %s", exc)

    # -- APScheduler ---------------------------------------------------------------------------
    def start(self) -> AlertScheduler:
        from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415

        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.safe_tick,
            "interval",
            seconds=self.settings.scheduler_tick_s,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
            misfire_grace_time=max(1, int(self.settings.scheduler_tick_s)),
        )
        self._scheduler.start()
        log.info(
            "alert scheduler %s started: tick every %gs, leader lock ttl %ds",
            self.owner,
            self.settings.scheduler_tick_s,
            self.settings.lock_ttl_s,
        )
        return self

    def stop(self) -> None:
        """Stop ticking, finish deliveries, free the lock (a standby takes over at once)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.notifier.close()
        self.lock.release()
        if self._own_engine:
            self.db_engine.dispose()
        log.info("alert scheduler %s stopped", self.owner)

    shutdown = stop


def start_scheduler(settings: Any, **kwargs: Any) -> AlertScheduler:
    """Start a background alert scheduler (used by ``areya demo``); stop it with ``.stop()``."""
    return AlertScheduler(settings, **kwargs).start()


def read_heartbeat(client: redis.Redis) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(HEARTBEAT_KEY).items()}
