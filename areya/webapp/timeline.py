"""Emotion shares per time bucket (4-class, or 7-class detail) from observations and their minute rollups."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from areya.db.models import LABELS4, LABELS7, Observation, ObservationMinute

# range name -> (span, bucket minutes): at most ~240 columns in a chart
RANGES: dict[str, tuple[timedelta, int]] = {
    "1h": (timedelta(hours=1), 1),
    "6h": (timedelta(hours=6), 2),
    "24h": (timedelta(hours=24), 10),
    "7d": (timedelta(days=7), 60),
}
DEFAULT_RANGE = "6h"


@dataclass(frozen=True)
class Bucket:
    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, label: str) -> float:
        return self.counts.get(label, 0) / self.total if self.total else 0.0


def minute_of(session: Session, column: Any) -> ColumnElement[Any]:
    """SQL expression truncating a UTC timestamp column to its minute (dialect-specific)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M", column)
    return func.date_trunc("minute", column)


def parse_minute(value: Any) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return datetime.strptime(str(value)[:16], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def floor_minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def minute_counts(
    session: Session, patient_ids: Iterable[int], start: datetime, end: datetime, *, scheme: int = 4
) -> dict[int, dict[datetime, Counter[str]]]:
    """patient -> minute -> label counts, from raw observations in [start, end) (one GROUP BY query)."""
    ids = list(patient_ids)
    out: dict[int, dict[datetime, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    if not ids:
        return out
    label = Observation.label4 if scheme == 4 else Observation.label7
    minute = minute_of(session, Observation.captured_at).label("minute")
    rows = session.execute(
        select(Observation.patient_id, minute, label, func.count())
        .where(Observation.patient_id.in_(ids), Observation.captured_at >= start, Observation.captured_at < end)
        .group_by(Observation.patient_id, minute, label)
    )
    for patient_id, raw_minute, lab, n in rows:
        out[patient_id][parse_minute(raw_minute)][lab] += int(n)
    return out


def rollup_counts(session: Session, patient_id: int, start: datetime, end: datetime) -> dict[datetime, Counter[str]]:
    """minute -> 4-class counts from the retention rollup (observation_minutes)."""
    rows = session.scalars(
        select(ObservationMinute).where(
            ObservationMinute.patient_id == patient_id,
            ObservationMinute.minute >= start,
            ObservationMinute.minute < end,
        )
    )
    return {
        floor_minute(r.minute): Counter(angry=r.n_angry, happy=r.n_happy, relaxed=r.n_relaxed, sad=r.n_sad)
        for r in rows
    }


def bucketize(
    minutes: dict[datetime, Counter[str]], start: datetime, end: datetime, bucket_minutes: int, labels: tuple[str, ...]
) -> list[Bucket]:
    """Every bucket from start to end (empty ones included, so a chart shows gaps as gaps)."""
    step = timedelta(minutes=bucket_minutes)
    first = floor_minute(start)
    n = max(1, int((end - first) / step + 0.999999))
    sums: list[Counter[str]] = [Counter() for _ in range(n)]
    for minute, counts in minutes.items():
        index = int((minute - first) / step)
        if 0 <= index < n:
            sums[index].update(counts)
    return [Bucket(first + i * step, {lab: int(c.get(lab, 0)) for lab in labels}) for i, c in enumerate(sums)]


def patient_timeline(
    session: Session, patient_id: int, range_name: str, now: datetime, *, scheme: int = 4
) -> tuple[list[Bucket], int]:
    """The buckets of a patient's chart over a named range, and the bucket size in minutes."""
    span, bucket_minutes = RANGES.get(range_name, RANGES[DEFAULT_RANGE])
    end = floor_minute(now) + timedelta(minutes=1)
    start = end - span
    minutes: dict[datetime, Counter[str]] = dict(
        minute_counts(session, [patient_id], start, end, scheme=scheme).get(patient_id, {})
    )
    if scheme == 4:
        for minute, counts in rollup_counts(session, patient_id, start, end).items():
            minutes.setdefault(minute, counts)  # raw rows win where both exist
    labels = LABELS4 if scheme == 4 else LABELS7
    return bucketize(minutes, start, end, bucket_minutes, labels), bucket_minutes
