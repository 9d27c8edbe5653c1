"""One scheduler tick: evaluate every rule for every patient and camera, in a handful of SQL queries.

:meth:`AlertEngine.tick` takes ``now`` (the injected clock), runs the negative-emotion rule, escalation and
camera checks in one transaction, then (outside it) the retention rollup when due, and returns a
:class:`TickReport` holding the committed transitions' notices, which the caller hands to the notifier.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.alerts.cameras import evaluate_cameras
from areya.alerts.errors import Conflict
from areya.alerts.evidence import LATEST_KEY, NegativeEvidence, negative_evidence
from areya.alerts.lifecycle import auto_resolve, escalate_alert, open_alert, take_notices
from areya.alerts.overrides import OverrideResolver
from areya.alerts.retention import RollupReport, roll_up_observations
from areya.alerts.rules import ManualResolve, RuleParams, escalation_due, evaluate_negative, stall_after_s
from areya.alerts.window import (
    BaselineCache,
    WindowCache,
    admitted_patient_wards,
    patient_baselines,
    window_stats,
)
from areya.db.engine import begin_write
from areya.db.models import ALERT_OPEN_STATES, Alert, AlertSnooze
from areya.notify.events import AlertNotice

log = logging.getLogger(__name__)

HYSTERESIS_KEY = "below_close_since"


@dataclass
class TickReport:
    at: datetime
    patients: int = 0  # admitted patients evaluated
    with_evidence: int = 0  # patients with observations in their window
    opened: int = 0
    resolved: int = 0
    escalated: int = 0
    camera_opened: int = 0
    camera_resolved: int = 0
    retention: RollupReport | None = None
    seconds: float = 0.0
    notices: list[AlertNotice] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "patients": self.patients,
            "with_evidence": self.with_evidence,
            "opened": self.opened,
            "resolved": self.resolved,
            "escalated": self.escalated,
            "camera_opened": self.camera_opened,
            "camera_resolved": self.camera_resolved,
            "rolled_up": self.retention.observations if self.retention else 0,
            "seconds": round(self.seconds, 4),
        }


class AlertEngine:
    """Rule evaluation against the database (no scheduling, no locking, no notification)."""

    def __init__(
        self,
        settings: Any,
        session_factory: Callable[[], Session],
        *,
        redis_client: redis.Redis | None = None,
        retention_interval_s: float = 60.0,
        retention_batch: int = 5000,
        retention_max_batches: int = 100,
        incremental: bool = True,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.redis_client = redis_client
        self.base_params = RuleParams.from_settings(settings)
        self.retention_interval_s = retention_interval_s
        self.retention_batch = retention_batch
        self.retention_max_batches = retention_max_batches
        self._last_retention: datetime | None = None
        self._retention_backlog = False
        self.retention_budget_s = max(0.5, 0.3 * settings.scheduler_tick_s)
        # incremental window aggregates (re-reading a minute or so per tick instead of the whole window)
        self.camera_lookback_s = int(math.ceil(2 * stall_after_s(settings.camera_offline_s)))
        self.window_cache = (
            WindowCache(
                bucket_s=10,
                slack_s=max(10.0, 2 * settings.scheduler_tick_s),
                min_quality=self.base_params.min_quality,
            )
            if incremental
            else None
        )
        # per-patient baselines: sums per minute of the baseline periods, then a minute at a time; a cold start
        # reads the hours of the periods over several ticks (baselines unknown meanwhile: plain thresholds)
        self.baseline_cache = (
            BaselineCache(load_budget_s=self.retention_budget_s, min_quality=self.base_params.min_quality)
            if incremental
            else None
        )

    # -- the tick ------------------------------------------------------------------------------
    def tick(self, now: datetime, *, retention: bool | None = None) -> TickReport:
        """Evaluate all rules at ``now`` (one committed transaction), then roll up old observations if due.

        The transaction is a write transaction from its start (SQLite: ``BEGIN IMMEDIATE``, waiting its turn for
        the write lock): a plain one reads, then fails with "database is locked" at its first write whenever a
        worker or the dashboard committed meanwhile, and the whole tick is lost."""
        started = time.perf_counter()
        report = TickReport(at=now)
        with self.session_factory() as session:
            try:
                begin_write(session)
                self.evaluate_negative(session, now, report)
                self.escalate(session, now, report)
                last_obs = None
                if self.window_cache is not None and self.window_cache.last_now == now:
                    last_obs = self.window_cache.last_observation_by_camera(
                        until=now, lookback_s=self.camera_lookback_s
                    )
                cams = evaluate_cameras(
                    session,
                    now=now,
                    offline_s=self.settings.camera_offline_s,
                    redis_client=self.redis_client,
                    last_observations=last_obs,
                )
                report.camera_opened, report.camera_resolved = cams["opened"], cams["resolved"]
                session.commit()
            except BaseException:
                session.rollback()
                take_notices(session)  # nothing was committed: nothing to announce
                raise
            report.notices = take_notices(session)  # committed: safe to announce
        if retention if retention is not None else self.retention_due(now):
            report.retention = self.run_retention(now)
        report.seconds = time.perf_counter() - started
        return report

    # -- retention -----------------------------------------------------------------------------
    def retention_due(self, now: datetime) -> bool:
        """Every ``retention_interval_s``, or at once while a backlog is left from the previous run."""
        return (
            self._last_retention is None
            or self._retention_backlog
            or now - self._last_retention >= timedelta(seconds=self.retention_interval_s)
        )

    def run_retention(self, now: datetime) -> RollupReport:
        """Roll up old observations, within a time budget (a backlog continues at the next tick)."""
        report = roll_up_observations(
            self.session_factory,
            now=now,
            retention_days=self.settings.retention_days,
            batch_size=self.retention_batch,
            max_batches=self.retention_max_batches,
            time_budget_s=self.retention_budget_s,
        )
        self._last_retention = now
        self._retention_backlog = not report.done
        return report

    # -- sustained negative emotion ------------------------------------------------------------
    def evaluate_negative(self, session: Session, now: datetime, report: TickReport) -> None:
        wards = admitted_patient_wards(session)
        report.patients = len(wards)
        resolver = OverrideResolver.load(session, self.base_params)
        params = {pid: resolver.params(ward_id, pid) for pid, ward_id in wards.items()}
        open_alerts = {
            a.patient_id: a
            for a in session.scalars(
                select(Alert).where(Alert.kind == "negative_emotion", Alert.state.in_(ALERT_OPEN_STATES))
            )
        }
        snoozed = set(session.scalars(select(AlertSnooze.patient_id).where(AlertSnooze.until > now).distinct()))
        manual = recent_manual_resolves(session, now, max((p.longest_cooldown_s for p in params.values()), default=0))
        # one aggregate query per distinct window length (normally one: the global window)
        by_window: dict[int, list[int]] = defaultdict(list)
        for pid, p in params.items():
            by_window[p.window_s].append(pid)
        stats = {}
        compute: Any = partial(window_stats, min_quality=self.base_params.min_quality)
        if self.window_cache is not None:
            self.window_cache.refresh(session, now, max([*by_window, self.camera_lookback_s]))
            compute = self.window_cache.window_stats
        for window_s, pids in by_window.items():
            only = None if window_s == self.base_params.window_s else pids
            found = compute(session, until=now, window_s=window_s, patient_ids=only)
            stats.update({pid: found[pid] for pid in pids if pid in found})
        report.with_evidence = len(stats)
        baselines = patient_baselines(session, now, params, self.baseline_cache)

        for pid, p in params.items():
            alert = open_alerts.get(pid)
            below = _parse_time(alert.evidence.get(HYSTERESIS_KEY)) if alert is not None and alert.evidence else None
            decision = evaluate_negative(
                stats.get(pid),
                p,
                now=now,
                is_open=alert is not None,
                below_close_since=below,
                snoozed=pid in snoozed,
                last_manual=manual.get(pid),
                baseline=baselines.get(pid),
            )
            if decision.action == "open":
                evidence = negative_evidence(stats[pid], p, now, baselines.get(pid))
                try:
                    open_alert(
                        session,
                        "negative_emotion",
                        now=now,
                        patient_id=pid,
                        ward_id=wards[pid],
                        evidence=evidence.to_json(),
                        note=evidence.headline(),
                    )
                    report.opened += 1
                except Conflict:
                    log.info("negative_emotion alert for patient %d already open (another scheduler?)", pid)
            elif decision.action == "resolve" and alert is not None:
                auto_resolve(
                    session,
                    alert,
                    now=now,
                    note=f"auto-resolved: {decision.reason} (resolve period {p.resolve_period_s}s)",
                )
                report.resolved += 1
            elif alert is not None:
                _track_open_alert(alert, decision.below_close_since, below, stats.get(pid), p, now)

    # -- escalation ----------------------------------------------------------------------------
    def escalate(self, session: Session, now: datetime, report: TickReport) -> None:
        firing = list(session.scalars(select(Alert).where(Alert.state == "firing")))
        if not firing:
            return
        resolver = OverrideResolver.load(session, self.base_params)
        snoozed = set(session.scalars(select(AlertSnooze.patient_id).where(AlertSnooze.until > now).distinct()))
        for alert in firing:
            params = resolver.params(alert.ward_id, alert.patient_id)
            if escalation_due(
                state=alert.state,
                opened_at=alert.opened_at,
                last_notified_at=alert.last_notified_at,
                escalate_after_s=params.escalate_after_s,
                now=now,
                snoozed=alert.patient_id in snoozed,
            ):
                escalate_alert(session, alert, now=now)
                report.escalated += 1


def _track_open_alert(
    alert: Alert, below_new: datetime | None, below_old: datetime | None, stats: Any, params: RuleParams, now: datetime
) -> None:
    """Keep the open alert's hysteresis state and its latest judged score (the level a manual resolve
    dismisses, see :func:`areya.alerts.rules.reopen_level`) in its evidence; written only when they change."""
    evidence = dict(alert.evidence or {})
    changed = below_new != below_old
    if changed:
        evidence[HYSTERESIS_KEY] = below_new.isoformat() if below_new else None
    if stats is not None and stats.n >= params.min_obs:
        score = round(stats.score(params.measure), 4)
        latest = evidence.get(LATEST_KEY) if isinstance(evidence.get(LATEST_KEY), dict) else {}
        if latest.get("score") != score:
            evidence[LATEST_KEY] = {"score": score, "n_obs": stats.n, "at": now.isoformat()}
            changed = True
    if changed:
        alert.evidence = evidence  # reassigned: JSON columns track assignment


def recent_manual_resolves(session: Session, now: datetime, cooldown_s: int) -> dict[int, ManualResolve]:
    """Patient id -> the latest negative-emotion alert a clinician resolved by hand in the last ``cooldown_s``
    (its time, the level resolved: the higher of the score at open and the latest score, and the finding)."""
    if cooldown_s <= 0:
        return {}
    rows = session.execute(
        select(Alert.patient_id, Alert.resolved_at, Alert.evidence, Alert.finding)
        .where(
            Alert.kind == "negative_emotion",
            Alert.resolution == "manual",
            Alert.resolved_at > now - timedelta(seconds=cooldown_s),
            Alert.patient_id.is_not(None),
        )
        .order_by(Alert.resolved_at)
    )
    out: dict[int, ManualResolve] = {}
    for patient_id, resolved_at, evidence, finding in rows:
        parsed = NegativeEvidence.from_json(evidence)
        level = parsed.resolved_level() if parsed is not None else 0.0
        out[int(patient_id)] = ManualResolve(resolved_at, level, finding)
    return out


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
