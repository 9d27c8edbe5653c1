"""Retention: raw observations older than ``retention_days`` become per-patient per-minute rollups
(:class:`~areya.db.models.ObservationMinute`: counts per class and mean probabilities), then are deleted.

Work is done in bounded batches (oldest first), each one transaction: the batch's rows are added to their
minute rows (created or merged, means weighted by counts) and deleted together, so a crash or a second run
never counts a row twice or loses one.  A minute split over two batches is merged correctly.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from areya.db.models import LABELS4, Observation, ObservationMinute

log = logging.getLogger(__name__)

DEFAULT_BATCH = 5000


@dataclass
class RollupReport:
    batches: int = 0
    observations: int = 0  # raw rows rolled up and deleted
    minutes_created: int = 0
    minutes_updated: int = 0
    done: bool = False  # nothing older than the cutoff is left


@dataclass
class _Acc:
    n: int = 0
    counts: dict[str, int] | None = None
    sums: dict[str, float] | None = None

    def add(self, label: str, probs: tuple[float, float, float, float]) -> None:
        if self.counts is None or self.sums is None:
            self.counts = dict.fromkeys(LABELS4, 0)
            self.sums = dict.fromkeys(LABELS4, 0.0)
        self.n += 1
        self.counts[label] += 1
        for name, p in zip(LABELS4, probs, strict=True):
            self.sums[name] += float(p)


class RetentionConflict(RuntimeError):
    """Another process rolled up the same rows concurrently; the batch was rolled back."""


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def roll_up_batch(session: Session, *, cutoff: datetime, batch_size: int = DEFAULT_BATCH) -> RollupReport:
    """Roll up and delete at most ``batch_size`` of the oldest observations captured before ``cutoff``.

    Flushes, does not commit (the caller's transaction makes the batch atomic).
    """
    report = RollupReport()
    rows = session.execute(
        select(
            Observation.id,
            Observation.patient_id,
            Observation.captured_at,
            Observation.label4,
            Observation.p_angry,
            Observation.p_happy,
            Observation.p_relaxed,
            Observation.p_sad,
        )
        .where(Observation.captured_at < cutoff)
        .order_by(Observation.captured_at, Observation.id)
        .limit(batch_size)
    ).all()
    if not rows:
        report.done = True
        return report
    acc: dict[tuple[int, datetime], _Acc] = defaultdict(_Acc)
    for _id, patient_id, captured_at, label, pa, ph, pr, ps in rows:
        acc[(patient_id, minute_of(captured_at))].add(label, (pa, ph, pr, ps))
    ids = [r[0] for r in rows]
    deleted = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        deleted += session.execute(delete(Observation).where(Observation.id.in_(chunk))).rowcount or 0
    if deleted != len(ids):
        raise RetentionConflict(f"expected to delete {len(ids)} observations, deleted {deleted}")
    keys = list(acc)
    existing: dict[tuple[int, datetime], ObservationMinute] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in session.scalars(
            select(ObservationMinute).where(tuple_(ObservationMinute.patient_id, ObservationMinute.minute).in_(chunk))
        ):
            existing[(row.patient_id, row.minute)] = row
    for key, a in acc.items():
        assert a.counts is not None and a.sums is not None
        row = existing.get(key)
        if row is None:
            session.add(
                ObservationMinute(
                    patient_id=key[0],
                    minute=key[1],
                    n_obs=a.n,
                    n_angry=a.counts["angry"],
                    n_happy=a.counts["happy"],
                    n_relaxed=a.counts["relaxed"],
                    n_sad=a.counts["sad"],
                    mean_p_angry=a.sums["angry"] / a.n,
                    mean_p_happy=a.sums["happy"] / a.n,
                    mean_p_relaxed=a.sums["relaxed"] / a.n,
                    mean_p_sad=a.sums["sad"] / a.n,
                )
            )
            report.minutes_created += 1
            continue
        total = row.n_obs + a.n
        for label in LABELS4:
            old_mean = getattr(row, f"mean_p_{label}")
            setattr(row, f"mean_p_{label}", (old_mean * row.n_obs + a.sums[label]) / total)
            setattr(row, f"n_{label}", getattr(row, f"n_{label}") + a.counts[label])
        row.n_obs = total
        report.minutes_updated += 1
    session.flush()
    report.batches = 1
    report.observations = len(ids)
    report.done = len(ids) < batch_size
    return report


def roll_up_observations(
    session_factory: Callable[[], Session],
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int = 10,
    time_budget_s: float | None = None,
) -> RollupReport:
    """Up to ``max_batches`` batches, one transaction each; stops early when nothing old is left, or (with
    ``time_budget_s``) once that much time has been spent — the rest is done next time."""
    cutoff = now - timedelta(days=retention_days)
    total = RollupReport()
    started = time.monotonic()
    for _ in range(max_batches):
        if time_budget_s is not None and total.batches and time.monotonic() - started >= time_budget_s:
            break
        with session_factory() as session:
            try:
                with session.begin():
                    report = roll_up_batch(session, cutoff=cutoff, batch_size=batch_size)
            except RetentionConflict as exc:
                log.warning("retention batch rolled back: %s", exc)
                break
        total.batches += report.batches
        total.observations += report.observations
        total.minutes_created += report.minutes_created
        total.minutes_updated += report.minutes_updated
        if report.done:
            total.done = True
            break
    if total.observations:
        log.info(
            "retention: %d observation(s) older than %s rolled up into minutes (%d new, %d merged)",
            total.observations,
            cutoff.isoformat(),
            total.minutes_created,
            total.minutes_updated,
        )
    return total
