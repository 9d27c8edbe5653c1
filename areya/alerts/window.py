"""The few SQL aggregate queries a tick needs, for all patients at once (GROUP BY patient).

:func:`window_stats` aggregates a whole window in one query.  :class:`WindowCache` keeps the same answer
incrementally, so that a tick reads only the last minute or so of observations instead of the whole window:

* observations are summed per patient per ``bucket_s``-second time bucket (exact: bucket = floor(epoch / B))
  in NumPy ring buffers, so that summing a window for every patient is a few array operations;
* each tick re-reads the buckets from ``slack_s`` before the previous tick up to ``now`` (replacing them),
  adds observations inserted since the previous tick but captured earlier (late arrivals, found by id: an
  index range over the few rows inserted since), and reads the window's first, partial bucket exactly;
* every query is bounded by the largest observation id read at the start of the tick, so a row committed
  meanwhile is counted exactly once, by the next tick;
* a full reload happens on the first tick, when the clock goes backwards, when a longer window is needed,
  and every ``full_refresh_s`` as a safety net (PostgreSQL may commit ids out of order).

The cache also keeps each camera's latest observation time per bucket (for the pipeline-stalled check).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Integer, String, and_, case, cast, func, select, type_coerce
from sqlalchemy.orm import Session

from areya.alerts.evidence import NegativeEvidence, negative_evidence
from areya.alerts.overrides import OverrideResolver
from areya.alerts.rules import RuleParams, WindowStats
from areya.db.models import LABELS4, Bed, BedAssignment, Observation, Patient

_PROB_COLUMNS = {
    "angry": Observation.p_angry,
    "happy": Observation.p_happy,
    "relaxed": Observation.p_relaxed,
    "sad": Observation.p_sad,
}


def window_stats(
    session: Session, *, until: datetime, window_s: int, patient_ids: Iterable[int] | None = None
) -> dict[int, WindowStats]:
    """Per-patient aggregates of observations captured in ``(until - window_s, until]`` (one query)."""
    since = until - timedelta(seconds=window_s)
    columns = [
        Observation.patient_id,
        func.count(),
        *[func.sum(case((Observation.label4 == label, 1), else_=0)) for label in LABELS4],
        *[func.sum(_PROB_COLUMNS[label]) for label in LABELS4],
        func.min(Observation.captured_at),
        func.max(Observation.captured_at),
    ]
    query = (
        select(*columns)
        .where(Observation.captured_at > since, Observation.captured_at <= until)
        .group_by(Observation.patient_id)
    )
    if patient_ids is not None:
        ids = sorted(set(patient_ids))
        if not ids:
            return {}
        query = query.where(Observation.patient_id.in_(ids))
    out: dict[int, WindowStats] = {}
    k = len(LABELS4)
    for row in session.execute(query):
        patient_id, n = int(row[0]), int(row[1])
        counts = {label: int(row[2 + i] or 0) for i, label in enumerate(LABELS4)}
        sums = {label: float(row[2 + k + i] or 0.0) for i, label in enumerate(LABELS4)}
        out[patient_id] = WindowStats(
            patient_id=patient_id,
            n=n,
            counts=counts,
            negative_mass=sums["angry"] + sums["sad"],
            prob_sums=sums,
            first_at=row[2 + 2 * k],
            last_at=row[3 + 2 * k],
        )
    return out


def current_evidence(
    session: Session, base: RuleParams, now: datetime, patients: dict[int, int | None]
) -> dict[int, NegativeEvidence]:
    """The negative-emotion evidence the rule would read now, per patient (``patients``: id -> ward id, for the
    per-ward and per-patient overrides): what the ward tiles and the patient page show."""
    if not patients:
        return {}
    resolver = OverrideResolver.load(session, base)
    params = {pid: resolver.params(ward_id, pid) for pid, ward_id in patients.items()}
    by_window: dict[int, list[int]] = {}
    for pid, p in params.items():
        by_window.setdefault(p.window_s, []).append(pid)
    out: dict[int, NegativeEvidence] = {}
    for window_s, pids in by_window.items():
        found = window_stats(session, until=now, window_s=window_s, patient_ids=pids)
        out.update({pid: negative_evidence(found.get(pid), params[pid], now) for pid in pids})
    return out


def admitted_patient_wards(session: Session) -> dict[int, int | None]:
    """Admitted patient id -> ward id of the current bed (None without a bed)."""
    query = (
        select(Patient.id, Bed.ward_id)
        .outerjoin(BedAssignment, and_(BedAssignment.patient_id == Patient.id, BedAssignment.end_at.is_(None)))
        .outerjoin(Bed, Bed.id == BedAssignment.bed_id)
        .where(Patient.status == "admitted")
    )
    return {int(pid): (int(wid) if wid is not None else None) for pid, wid in session.execute(query)}


def last_observation_by_camera(session: Session, *, until: datetime, lookback_s: float) -> dict[int, datetime]:
    """Camera id -> time of its latest observation in ``(until - lookback_s, until]`` (one query)."""
    since = until - timedelta(seconds=lookback_s)
    query = (
        select(Observation.camera_id, func.max(Observation.captured_at))
        .where(Observation.captured_at > since, Observation.captured_at <= until, Observation.camera_id.is_not(None))
        .group_by(Observation.camera_id)
    )
    return {int(cid): at for cid, at in session.execute(query) if at is not None}


# --------------------------------------------------------------------------- incremental window

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_NONE_FIRST = np.iinfo(np.int64).max
_NONE_LAST = np.iinfo(np.int64).min
_NO_BUCKET = np.iinfo(np.int64).min
_VALUES = 9  # n, counts x4 (LABELS4 order), prob sums x4


def _to_us(value: Any) -> int:
    """Microseconds since the epoch of a raw captured_at (SQLite text, naive UTC; PostgreSQL datetime)."""
    if isinstance(value, str):
        return (datetime.fromisoformat(value) - _EPOCH_NAIVE) // _US
    if value.tzinfo is None:
        return (value - _EPOCH_NAIVE) // _US
    return (value - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def _aggregates() -> list[Any]:
    return [
        func.count(),
        *[func.sum(case((Observation.label4 == label, 1), else_=0)) for label in LABELS4],
        *[func.sum(_PROB_COLUMNS[label]) for label in LABELS4],
        type_coerce(func.min(Observation.captured_at), String),  # raw: converted to microseconds in bulk
        type_coerce(func.max(Observation.captured_at), String),
    ]


class WindowCache:
    """Per-patient window aggregates kept up to date tick after tick (see the module doc)."""

    def __init__(self, bucket_s: int = 10, slack_s: float = 15.0, full_refresh_s: float = 3600.0) -> None:
        if bucket_s < 1 or slack_s < 0:
            raise ValueError("bucket_s must be >= 1 and slack_s >= 0")
        self.bucket_s = int(bucket_s)
        self.slack_s = float(slack_s)
        self.full_refresh_s = float(full_refresh_s)
        self.max_window_s = 0
        self.last_now: datetime | None = None
        self.last_full: datetime | None = None
        self.max_id = 0
        self.floor_bucket = 0
        self.full_reloads = 0
        self._allocate(0)

    # -- storage -----------------------------------------------------------------------------------
    def _allocate(self, slots: int, patients: int = 64) -> None:
        self.slots = slots
        self.rows: dict[int, int] = {}  # patient id -> row
        self.values = np.zeros((patients, slots, _VALUES))
        self.first = np.full((patients, slots), _NONE_FIRST, dtype=np.int64)
        self.last = np.full((patients, slots), _NONE_LAST, dtype=np.int64)
        self.slot_bucket = np.full(slots, _NO_BUCKET, dtype=np.int64)
        self.camera_last: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self.last_now = None
        self._allocate(self.slots)

    def _row(self, patient_id: int) -> int:
        row = self.rows.get(patient_id)
        if row is None:
            row = self.rows[patient_id] = len(self.rows)
            if row >= self.values.shape[0]:
                grow = self.values.shape[0]
                self.values = np.concatenate([self.values, np.zeros((grow, self.slots, _VALUES))])
                self.first = np.concatenate([self.first, np.full((grow, self.slots), _NONE_FIRST, np.int64)])
                self.last = np.concatenate([self.last, np.full((grow, self.slots), _NONE_LAST, np.int64)])
        return row

    def _clear_slots(self, mask: np.ndarray) -> None:
        self.values[:, mask, :] = 0.0
        self.first[:, mask] = _NONE_FIRST
        self.last[:, mask] = _NONE_LAST
        for per_slot in self.camera_last.values():
            per_slot[mask] = _NONE_LAST
        self.slot_bucket[mask] = _NO_BUCKET

    def _claim(self, buckets: np.ndarray) -> np.ndarray:
        """The ring slots of ``buckets``, (re)initialised for them when they held an older bucket."""
        slots = np.mod(buckets, self.slots)
        for bucket in np.unique(buckets):
            slot = int(bucket % self.slots)
            if self.slot_bucket[slot] != bucket:
                mask = np.zeros(self.slots, dtype=bool)
                mask[slot] = True
                self._clear_slots(mask)
                self.slot_bucket[slot] = bucket
        return slots

    def _add(self, rows: list[Any]) -> None:
        """Add grouped rows (patient, camera, bucket, aggregates...) into the buckets."""
        if not rows:
            return
        patient_rows = np.fromiter((self._row(int(r[0])) for r in rows), dtype=np.int64, count=len(rows))
        buckets = np.fromiter((int(r[2]) for r in rows), dtype=np.int64, count=len(rows))
        values = np.array([[float(v or 0) for v in r[3:3 + _VALUES]] for r in rows])
        first = np.fromiter((_to_us(r[3 + _VALUES]) for r in rows), dtype=np.int64, count=len(rows))
        last = np.fromiter((_to_us(r[4 + _VALUES]) for r in rows), dtype=np.int64, count=len(rows))
        slots = self._claim(buckets)
        np.add.at(self.values, (patient_rows, slots), values)
        np.minimum.at(self.first, (patient_rows, slots), first)
        np.maximum.at(self.last, (patient_rows, slots), last)
        cameras = np.fromiter((-1 if r[1] is None else int(r[1]) for r in rows), dtype=np.int64, count=len(rows))
        for camera_id in np.unique(cameras[cameras >= 0]).tolist():
            per_slot = self.camera_last.setdefault(camera_id, np.full(self.slots, _NONE_LAST, dtype=np.int64))
            pick = cameras == camera_id
            np.maximum.at(per_slot, slots[pick], last[pick])

    # -- SQL ---------------------------------------------------------------------------------------
    def _bucket_expr(self, dialect: str) -> Any:
        if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC: whole seconds, then floor
            return cast(func.strftime("%s", func.substr(Observation.captured_at, 1, 19)), Integer) // self.bucket_s
        return cast(func.floor(func.extract("epoch", Observation.captured_at) / self.bucket_s), BigInteger)

    def _load(self, session: Session, *conditions: Any) -> list[Any]:
        bucket = self._bucket_expr(session.get_bind().dialect.name).label("bucket")
        query = (
            select(Observation.patient_id, Observation.camera_id, bucket, *_aggregates())
            .where(*conditions)
            .group_by(Observation.patient_id, Observation.camera_id, bucket)
        )
        return list(session.connection().execute(query))  # Core: no ORM overhead per row

    # -- the tick ----------------------------------------------------------------------------------
    def refresh(self, session: Session, now: datetime, max_window_s: int) -> None:
        """Bring the buckets up to ``now`` for windows up to ``max_window_s`` (on error: cold again)."""
        try:
            self._refresh(session, now, max_window_s)
        except BaseException:
            self.reset()
            raise

    def _refresh(self, session: Session, now: datetime, max_window_s: int) -> None:
        b = self.bucket_s
        max_id = int(session.scalar(select(func.max(Observation.id))) or 0)
        now_s = _epoch(now)
        floor_bucket = math.floor((now_s - max_window_s) / b) + 1  # first bucket wholly inside the window
        floor_start = _at(floor_bucket * b)
        full = (
            self.last_now is None
            or now < self.last_now
            or max_window_s > self.max_window_s
            or (now - self.last_now).total_seconds() > max_window_s
            or self.last_full is None
            or (now - self.last_full).total_seconds() >= self.full_refresh_s
        )
        if full:
            self._allocate(max(2, math.ceil(max_window_s / b) + 2))
            self._add(self._load(session, Observation.captured_at >= floor_start, Observation.captured_at <= now,
                                 Observation.id <= max_id))
            self.last_full = now
            self.full_reloads += 1
        else:
            assert self.last_now is not None
            reread_bucket = max(floor_bucket, math.floor((_epoch(self.last_now) - self.slack_s) / b))
            reread_start = _at(reread_bucket * b)
            late = self._load(session, Observation.id > self.max_id, Observation.id <= max_id,
                              Observation.captured_at < reread_start, Observation.captured_at >= floor_start)
            self._clear_slots(self.slot_bucket < floor_bucket)  # out of every window now
            self._add(late)
            self._clear_slots(self.slot_bucket >= reread_bucket)
            self._add(self._load(session, Observation.captured_at >= reread_start, Observation.captured_at <= now,
                                 Observation.id <= max_id))
        self.floor_bucket = floor_bucket
        self.max_window_s = max_window_s  # what the buckets cover now (older ones were cleared)
        self.max_id = max_id
        self.last_now = now

    def _inside(self, start: datetime) -> tuple[int, np.ndarray]:
        """(first bucket, partly inside: read exactly; mask of the slots wholly inside ``(start, now]``)."""
        first_bucket = math.floor(_epoch(start) / self.bucket_s)
        mask = (self.slot_bucket > first_bucket) & (self.slot_bucket >= self.floor_bucket)
        return first_bucket, mask

    def window_stats(
        self, session: Session, *, until: datetime, window_s: int, patient_ids: Iterable[int] | None = None
    ) -> dict[int, WindowStats]:
        """Like :func:`window_stats`, from the buckets (call :meth:`refresh` for ``until`` first)."""
        if self.last_now != until or window_s > self.max_window_s:
            raise RuntimeError("refresh the window cache for this time and window first")
        start = until - timedelta(seconds=window_s)
        first_bucket, mask = self._inside(start)
        edge = _at((first_bucket + 1) * self.bucket_s)
        wanted = set(patient_ids) if patient_ids is not None else None
        conditions = [Observation.captured_at > start, Observation.captured_at < edge,
                      Observation.captured_at <= until, Observation.id <= self.max_id]
        if wanted is not None:
            if not wanted:
                return {}
            conditions.append(Observation.patient_id.in_(sorted(wanted)))
        partial = {int(r[0]): r[1:] for r in session.connection().execute(
            select(Observation.patient_id, *_aggregates()).where(*conditions).group_by(Observation.patient_id))}
        n_rows = len(self.rows)
        values = self.values[:n_rows][:, mask, :].sum(axis=1)
        first = self.first[:n_rows][:, mask].min(axis=1, initial=_NONE_FIRST)
        last = self.last[:n_rows][:, mask].max(axis=1, initial=_NONE_LAST)
        out: dict[int, WindowStats] = {}
        for patient_id in set(self.rows) | set(partial):
            if wanted is not None and patient_id not in wanted:
                continue
            row = self.rows.get(patient_id)
            vals = values[row].tolist() if row is not None else [0.0] * _VALUES
            lo = int(first[row]) if row is not None else _NONE_FIRST
            hi = int(last[row]) if row is not None else _NONE_LAST
            extra = partial.get(patient_id)
            if extra is not None:
                vals = [a + float(b or 0) for a, b in zip(vals, extra[:_VALUES], strict=True)]
                lo, hi = min(lo, _to_us(extra[_VALUES])), max(hi, _to_us(extra[_VALUES + 1]))
            n = int(round(vals[0]))
            if n <= 0:
                continue
            counts = {label: int(round(vals[1 + i])) for i, label in enumerate(LABELS4)}
            sums = {label: vals[5 + i] for i, label in enumerate(LABELS4)}
            out[patient_id] = WindowStats(patient_id, n, counts, sums["angry"] + sums["sad"], sums, _from_us(lo),
                                          _from_us(hi))
        return out

    def last_observation_by_camera(self, *, until: datetime, lookback_s: float) -> dict[int, datetime]:
        """Camera id -> its latest observation in the whole buckets of ``(until - lookback_s, until]``."""
        if self.last_now != until or lookback_s > self.max_window_s:
            raise RuntimeError("refresh the window cache for this time and look-back first")
        _first, mask = self._inside(until - timedelta(seconds=lookback_s))
        out = {}
        for camera_id, per_slot in self.camera_last.items():
            latest = int(per_slot[mask].max(initial=_NONE_LAST))
            if latest != _NONE_LAST:
                out[camera_id] = _from_us(latest)
        return out


def _epoch(at: datetime) -> float:
    return at.astimezone(UTC).timestamp()


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
