"""The few SQL aggregate queries a tick needs, for all patients at once (GROUP BY patient).

Observations whose face quality is below the rule's ``min_quality`` are set aside (:func:`readable`): every sum
leaves them out and counts them apart (``WindowStats.n_set_aside``), and the baseline does not read them.

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

:func:`patient_baselines` gives each patient's usual score for the per-patient baseline (see
:mod:`areya.alerts.rules`: the whole minutes of ``baseline_s`` before the window, alert periods left out).
:class:`BaselineCache` keeps per-patient sums per minute of those periods, so that a tick reads only the
minutes that became final since the previous one (about once a minute) and rows inserted late (by id); the first
tick (or a longer period) reads the whole period once.  The scheduler keeps one for all admitted patients; the
web process keeps one per database for the patients whose tiles or page it showed in the last 15 minutes.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Integer, String, and_, case, cast, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session

from areya.alerts.evidence import NegativeEvidence, negative_evidence
from areya.alerts.overrides import OverrideResolver
from areya.alerts.rules import (
    NEGATIVE_LABELS,
    Baseline,
    RuleParams,
    WindowStats,
    baseline_minutes,
    excluded_minutes,
    night_minutes,
    usual_high,
)
from areya.db.models import LABELS4, Alert, Bed, BedAssignment, Observation, Patient

_PROB_COLUMNS = {
    "angry": Observation.p_angry,
    "happy": Observation.p_happy,
    "relaxed": Observation.p_relaxed,
    "sad": Observation.p_sad,
}


def readable(min_quality: float) -> Any | None:
    """The SQL condition of an observation the rule reads: its face quality is not below ``min_quality`` or not
    known (None when every observation is read: ``min_quality`` 0)."""
    if min_quality <= 0:
        return None
    return or_(Observation.quality.is_(None), Observation.quality >= min_quality)


def _sums(min_quality: float) -> list[Any]:
    """The :data:`_VALUES` aggregates: observations read, their label counts (LABELS4 order) and probability sums,
    and the observations set aside (face quality below ``min_quality``)."""
    read = readable(min_quality)
    if read is None:
        return [
            func.count(),
            *[func.sum(case((Observation.label4 == label, 1), else_=0)) for label in LABELS4],
            *[func.sum(_PROB_COLUMNS[label]) for label in LABELS4],
            type_coerce(literal(0), Integer),
        ]
    return [
        func.sum(case((read, 1), else_=0)),
        *[func.sum(case((and_(read, Observation.label4 == label), 1), else_=0)) for label in LABELS4],
        *[func.sum(case((read, _PROB_COLUMNS[label]), else_=0.0)) for label in LABELS4],
        func.sum(case((read, 0), else_=1)),
    ]


def window_stats(
    session: Session,
    *,
    until: datetime,
    window_s: int,
    patient_ids: Iterable[int] | None = None,
    min_quality: float = 0.0,
) -> dict[int, WindowStats]:
    """Per-patient aggregates of observations captured in ``(until - window_s, until]`` (one query); those whose
    face quality is below ``min_quality`` are set aside (counted apart)."""
    since = until - timedelta(seconds=window_s)
    columns = [
        Observation.patient_id,
        *_sums(min_quality),
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
        patient_id, n = int(row[0]), int(row[1] or 0)
        counts = {label: int(row[2 + i] or 0) for i, label in enumerate(LABELS4)}
        sums = {label: float(row[2 + k + i] or 0.0) for i, label in enumerate(LABELS4)}
        out[patient_id] = WindowStats(
            patient_id=patient_id,
            n=n,
            counts=counts,
            negative_mass=sums["angry"] + sums["sad"],
            prob_sums=sums,
            first_at=row[3 + 2 * k],
            last_at=row[4 + 2 * k],
            n_set_aside=int(row[2 + 2 * k] or 0),
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
    by_window: dict[tuple[int, float], list[int]] = {}
    for pid, p in params.items():
        by_window.setdefault((p.window_s, p.min_quality), []).append(pid)
    baselines = patient_baselines(session, now, params, web_baseline_cache(session))
    out: dict[int, NegativeEvidence] = {}
    for (window_s, min_quality), pids in by_window.items():
        found = window_stats(session, until=now, window_s=window_s, patient_ids=pids, min_quality=min_quality)
        out.update({pid: negative_evidence(found.get(pid), params[pid], now, baselines.get(pid)) for pid in pids})
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
_VALUES = 10  # n read, counts x4 (LABELS4 order), prob sums x4, n set aside (see _sums)


def _to_us(value: Any) -> int:
    """Microseconds since the epoch of a raw captured_at (SQLite text, naive UTC; PostgreSQL datetime)."""
    if isinstance(value, str):
        return (datetime.fromisoformat(value) - _EPOCH_NAIVE) // _US
    if value.tzinfo is None:
        return (value - _EPOCH_NAIVE) // _US
    return (value - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def _aggregates(min_quality: float) -> list[Any]:
    return [
        *_sums(min_quality),
        type_coerce(func.min(Observation.captured_at), String),  # raw: converted to microseconds in bulk
        type_coerce(func.max(Observation.captured_at), String),
    ]


class WindowCache:
    """Per-patient window aggregates kept up to date tick after tick (see the module doc); observations whose face
    quality is below ``min_quality`` are set aside (counted apart)."""

    def __init__(
        self, bucket_s: int = 10, slack_s: float = 15.0, full_refresh_s: float = 3600.0, min_quality: float = 0.0
    ) -> None:
        if bucket_s < 1 or slack_s < 0:
            raise ValueError("bucket_s must be >= 1 and slack_s >= 0")
        self.min_quality = float(min_quality)
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
        values = np.array([[float(v or 0) for v in r[3 : 3 + _VALUES]] for r in rows])
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
    def _load(self, session: Session, *conditions: Any) -> list[Any]:
        bucket = _bucket_expr(session.get_bind().dialect.name, self.bucket_s).label("bucket")
        query = (
            select(Observation.patient_id, Observation.camera_id, bucket, *_aggregates(self.min_quality))
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
            self._add(
                self._load(
                    session,
                    Observation.captured_at >= floor_start,
                    Observation.captured_at <= now,
                    Observation.id <= max_id,
                )
            )
            self.last_full = now
            self.full_reloads += 1
        else:
            assert self.last_now is not None
            reread_bucket = max(floor_bucket, math.floor((_epoch(self.last_now) - self.slack_s) / b))
            reread_start = _at(reread_bucket * b)
            late = self._load(
                session,
                Observation.id > self.max_id,
                Observation.id <= max_id,
                Observation.captured_at < reread_start,
                Observation.captured_at >= floor_start,
            )
            self._clear_slots(self.slot_bucket < floor_bucket)  # out of every window now
            self._add(late)
            self._clear_slots(self.slot_bucket >= reread_bucket)
            self._add(
                self._load(
                    session,
                    Observation.captured_at >= reread_start,
                    Observation.captured_at <= now,
                    Observation.id <= max_id,
                )
            )
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
        conditions = [
            Observation.captured_at > start,
            Observation.captured_at < edge,
            Observation.captured_at <= until,
            Observation.id <= self.max_id,
        ]
        if wanted is not None:
            if not wanted:
                return {}
            conditions.append(Observation.patient_id.in_(sorted(wanted)))
        partial = {
            int(r[0]): r[1:]
            for r in session.connection().execute(
                select(Observation.patient_id, *_aggregates(self.min_quality))
                .where(*conditions)
                .group_by(Observation.patient_id)
            )
        }
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
            n, set_aside = int(round(vals[0])), int(round(vals[9]))
            if n <= 0 and set_aside <= 0:
                continue
            counts = {label: int(round(vals[1 + i])) for i, label in enumerate(LABELS4)}
            sums = {label: vals[5 + i] for i, label in enumerate(LABELS4)}
            out[patient_id] = WindowStats(
                patient_id, n, counts, sums["angry"] + sums["sad"], sums, _from_us(lo), _from_us(hi), set_aside
            )
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


def _bucket_expr(dialect: str, bucket_s: int) -> Any:
    """floor(epoch seconds of captured_at / bucket_s) in SQL."""
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC: whole seconds, then floor
        return cast(func.strftime("%s", func.substr(Observation.captured_at, 1, 19)), Integer) // bucket_s
    return cast(func.floor(func.extract("epoch", Observation.captured_at) / bucket_s), BigInteger)


# --------------------------------------------------------------------------- per-patient baseline

_BASELINE_VALUES = 3  # n, labelled angry or sad, sum of p_angry + p_sad
IN_LIST_MAX = 50  # more patients than this: read all and keep theirs in Python (no long IN lists)


def negative_alert_spans(
    session: Session, patient_ids: Iterable[int], since: datetime
) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """Patient id -> ``(opened_at, resolved_at or None)`` of their negative-emotion alerts still open or resolved
    at or after ``since`` (what the baseline leaves out, see :func:`areya.alerts.rules.excluded_minutes`)."""
    ids = set(patient_ids)
    if not ids:
        return {}
    out: dict[int, list[tuple[datetime, datetime | None]]] = {}
    query = select(Alert.patient_id, Alert.opened_at, Alert.resolved_at).where(
        Alert.kind == "negative_emotion",
        Alert.patient_id.is_not(None),
        or_(Alert.resolved_at.is_(None), Alert.resolved_at >= since),
    )
    if len(ids) <= IN_LIST_MAX:
        query = query.where(Alert.patient_id.in_(sorted(ids)))
    for pid, opened_at, resolved_at in session.execute(query):  # a few rows: the alerts of the last hours
        if int(pid) in ids:
            out.setdefault(int(pid), []).append((opened_at, resolved_at))
    return out


def patient_baselines(
    session: Session, now: datetime, params: Mapping[int, RuleParams], cache: BaselineCache | None = None
) -> dict[int, Baseline]:
    """Patient id -> :class:`~areya.alerts.rules.Baseline` for the patients whose rule uses one
    (``baseline_s`` > 0): their score's sums over the whole minutes of the baseline period before the window,
    the minutes of their negative-emotion alerts left out; with ``baseline_by_night`` only the period's minutes of
    the same part of the day as ``now`` (night or day).  ``cache``: kept between calls (incremental); without
    one the whole period is read."""
    wanted = {pid: p for pid, p in params.items() if p.baseline_s > 0}
    if not wanted:
        return {}
    periods: dict[tuple[int, int], tuple[int, int]] = {}  # (window_s, baseline_s) -> minutes [first, end)
    spans = {}
    for pid, p in wanted.items():
        key = (p.window_s, p.baseline_s)
        if key not in periods:
            periods[key] = baseline_minutes(now, p.window_s, p.baseline_s)
        spans[pid] = periods[key]
    lo, hi = min(a for a, _ in periods.values()), max(b for _, b in periods.values())
    alerts = negative_alert_spans(session, wanted, _at(lo * 60))
    excluded = {pid: excluded_minutes(alerts[pid], wanted[pid].window_s, *spans[pid]) for pid in alerts}
    min_quality = max(p.min_quality for p in wanted.values())  # one setting: the same for every patient
    cache = cache if cache is not None else BaselineCache(min_quality=min_quality)
    with cache.lock:
        if cache.min_quality != min_quality:  # the setting changed: the sums are of other observations
            cache.min_quality = min_quality
            cache._allocate(cache.slots)
        cache.refresh(session, lo, hi, wanted, now=_epoch(now))
        parts = {pid: p.is_night(now) for pid, p in wanted.items() if p.baseline_by_night}
        by_night = next((p for p in wanted.values() if p.baseline_by_night), None)
        night_of = (lambda minutes: night_minutes(minutes, by_night)) if by_night is not None else None
        sums = cache.sums(spans, excluded, parts, night_of)
        masks: dict[tuple[int, int], np.ndarray] = {}  # span -> its night minutes (once per tick, not per patient)
        highs = {}
        for pid, p in wanted.items():
            if p.baseline_quantile <= 0 or pid not in sums:
                continue
            night = None
            if pid in parts and night_of is not None:
                span = spans[pid]
                if span not in masks:
                    masks[span] = night_of(np.arange(*span))
                night = masks[span] if parts[pid] else ~masks[span]
            highs[pid] = usual_high(cache.per_minute(pid, *spans[pid], excluded.get(pid, []), night), p)
    bounds = {span: (_at(span[0] * 60), _at(span[1] * 60)) for span in periods.values()}
    out = {}
    for pid, span in spans.items():
        if pid in sums:  # else: the cache is still reading this period (a cold start): not known yet
            n, negative, mass = sums[pid]
            part = None if pid not in parts else "night" if parts[pid] else "day"
            out[pid] = Baseline(
                int(round(n)), int(round(negative)), float(mass), *bounds[span], part=part, high=highs.get(pid)
            )
    return out


class BaselineCache:
    """Per-patient sums per minute (n, labelled angry or sad, p_angry + p_sad) over the minutes ``[lo, hi)`` that
    the baseline periods need (see the module doc).  The minutes ``[ready_from, hi)`` are loaded for every kept
    patient (the observations not set aside by ``min_quality``); each :meth:`refresh` adds rows inserted since the
    previous one (by id) into them, reads the minutes that became needed since, the loaded minutes of patients
    asked for the first time, and then older minutes, newest first, ``chunk_minutes`` at a time: all of them, or
    with ``load_budget_s`` as many as fit in that time (at least one chunk), so that a cold start spreads the long
    read over a few ticks instead of one long one.
    A patient's baseline is known once its whole period is loaded (:meth:`sums` leaves the others out).
    Patients not asked for during ``forget_s`` (0: at once) are dropped.  Callers hold :attr:`lock` around
    refresh and sums."""

    def __init__(
        self,
        forget_s: float = 0.0,
        spare_minutes: int = 16,
        load_budget_s: float | None = None,
        chunk_minutes: int = 10,
        min_quality: float = 0.0,
    ) -> None:
        self.forget_s = float(forget_s)
        self.min_quality = float(min_quality)
        self.spare_minutes = int(spare_minutes)
        self.load_budget_s = load_budget_s
        self.chunk_minutes = max(1, int(chunk_minutes))
        self.lock = threading.Lock()
        self.full_loads = 0
        self._allocate(0)

    def _allocate(self, slots: int) -> None:
        self.slots = slots
        self.lo: int | None = None  # the minutes [lo, hi) needed; [ready_from, hi) loaded for every kept patient
        self.hi: int | None = None
        self.ready_from: int | None = None
        self.max_id = 0
        self.rows: dict[int, int] = {}
        self.free: list[int] = []
        self.seen: dict[int, float] = {}
        self.values = np.zeros((16, slots, _BASELINE_VALUES))
        self.slot_minute = np.full(slots, _NO_BUCKET, dtype=np.int64)

    def _row(self, patient_id: int) -> int:
        row = self.rows.get(patient_id)
        if row is None:
            row = self.free.pop() if self.free else len(self.rows)
            self.rows[patient_id] = row
            if row >= self.values.shape[0]:
                grow = self.values.shape[0]
                self.values = np.concatenate([self.values, np.zeros((grow, self.slots, _BASELINE_VALUES))])
        return row

    def _forget(self, patient_id: int) -> None:
        row = self.rows.pop(patient_id)
        self.values[row] = 0.0
        self.free.append(row)
        self.seen.pop(patient_id, None)

    def _add(
        self, rows: list[Any], patient_ids: set[int] | None = None, lo: int | None = None, hi: int | None = None
    ) -> None:
        """Add grouped rows (patient, minute, n, negative labels, negative mass), only those of ``patient_ids`` and
        of the minutes ``[lo, hi)`` when given."""
        if patient_ids is not None or lo is not None:
            rows = [
                r
                for r in rows
                if (patient_ids is None or int(r[0]) in patient_ids)
                and (lo is None or lo <= int(r[1]))
                and (hi is None or int(r[1]) < hi)
            ]
        if not rows:
            return
        patient_rows = np.fromiter((self._row(int(r[0])) for r in rows), dtype=np.int64, count=len(rows))
        minutes = np.fromiter((int(r[1]) for r in rows), dtype=np.int64, count=len(rows))
        values = np.array([[float(v or 0) for v in r[2 : 2 + _BASELINE_VALUES]] for r in rows])
        for minute in np.unique(minutes).tolist():  # claim the slots (cleared when they held an older minute)
            slot = minute % self.slots
            if self.slot_minute[slot] != minute:
                self.values[:, slot, :] = 0.0
                self.slot_minute[slot] = minute
        np.add.at(self.values, (patient_rows, np.mod(minutes, self.slots)), values)

    def _load(
        self,
        session: Session,
        lo: int | None,
        hi: int | None,
        patient_ids: set[int],
        *conditions: Any,
        pick: bool = True,
    ) -> list[Any]:
        """Grouped rows (patient, minute, sums) of the minutes ``[lo, hi)`` (None: any; then ``conditions`` bound
        the rows) for ``patient_ids`` (picked in SQL when ``pick`` and a short list; else all patients, the caller
        keeps theirs)."""
        if not patient_ids or (lo is not None and hi is not None and hi <= lo):
            return []
        minute = _bucket_expr(session.get_bind().dialect.name, 60).label("minute")
        negative = func.sum(case((Observation.label4.in_(NEGATIVE_LABELS), 1), else_=0))
        where = list(conditions)
        read = readable(self.min_quality)
        if read is not None:
            where.append(read)
        if lo is not None:
            where.append(Observation.captured_at >= _at(lo * 60))
        if hi is not None:
            where.append(Observation.captured_at < _at(hi * 60))
        if pick and len(patient_ids) <= IN_LIST_MAX:
            where.append(Observation.patient_id.in_(sorted(patient_ids)))
        query = (
            select(
                Observation.patient_id,
                minute,
                func.count(),
                negative,
                func.sum(Observation.p_angry + Observation.p_sad),
            )
            .where(*where)
            .group_by(Observation.patient_id, minute)
        )
        return list(session.connection().execute(query))

    def refresh(self, session: Session, lo: int, hi: int, patient_ids: Iterable[int], *, now: float) -> None:
        """Bring the minutes ``[lo, hi)`` up to date for ``patient_ids`` (``now``: epoch seconds, for forgetting;
        on error: empty again)."""
        try:
            self._refresh(session, lo, hi, set(patient_ids), now)
        except BaseException:
            self._allocate(self.slots)
            raise

    def _refresh(self, session: Session, lo: int, hi: int, ids: set[int], now: float) -> None:
        started = time.perf_counter()
        max_id = int(session.scalar(select(func.max(Observation.id))) or 0)
        if self.lo is None or self.hi is None or self.ready_from is None or lo < self.lo or hi - lo > self.slots:
            self._allocate(hi - lo + self.spare_minutes)
            for pid in ids:
                self._row(pid)
            self.lo, self.hi, self.ready_from = lo, hi, hi  # nothing loaded yet: older minutes below
            self.full_loads += 1
        else:
            for pid in list(self.rows):
                if pid not in ids and (self.forget_s <= 0 or now - self.seen.get(pid, now) > self.forget_s):
                    self._forget(pid)
            kept = set(self.rows)
            new_lo = max(self.lo, hi - self.slots) if hi > self.hi else self.lo
            new_hi = max(hi, self.hi)
            ready = max(self.ready_from, new_lo)
            # rows inserted since the previous refresh into minutes already loaded (read by id only: the few rows
            # inserted since, whatever their time; kept here), then the minutes now needed
            if max_id > self.max_id:
                late = self._load(
                    session, None, None, kept, Observation.id > self.max_id, Observation.id <= max_id, pick=False
                )  # by the primary key, never a patient index over their whole history
                self._add(late, kept, ready, min(self.hi, new_hi))
            self._add(self._load(session, max(self.hi, ready), new_hi, kept, Observation.id <= max_id), kept)
            fresh = ids - kept
            for pid in fresh:
                self._row(pid)
            self._add(self._load(session, ready, new_hi, fresh, Observation.id <= max_id), fresh)
            self.lo, self.hi, self.ready_from = new_lo, new_hi, ready
        # older minutes, newest first, for every kept patient (rows inserted meanwhile are late rows next time)
        kept = set(self.rows)
        while self.ready_from > self.lo:
            start = max(self.lo, self.ready_from - self.chunk_minutes)
            self._add(self._load(session, start, self.ready_from, kept, Observation.id <= max_id), kept)
            self.ready_from = start
            if self.load_budget_s is not None and time.perf_counter() - started >= self.load_budget_s:
                break
        self.max_id = max_id
        for pid in ids:
            self.seen[pid] = now

    @property
    def loading(self) -> bool:
        """Older minutes are still to be read (some baselines are not known yet)."""
        return self.lo is not None and self.ready_from is not None and self.ready_from > self.lo

    def per_minute(
        self, patient_id: int, first: int, end: int, left_out: list[tuple[int, int]], keep: np.ndarray | None = None
    ) -> np.ndarray:
        """(end - first, 3) sums of each minute of ``[first, end)`` for one patient (n, labelled angry or sad,
        p_angry + p_sad), zeros in the ``left_out`` minute ranges and, with ``keep`` (a bool per minute of
        ``[first, end)``), in the minutes it leaves out; the minutes must be loaded (:meth:`sums` gave this
        patient)."""
        out = np.zeros((max(end - first, 0), _BASELINE_VALUES))
        row = self.rows.get(patient_id)
        if row is None or end <= first:
            return out
        inside = (self.slot_minute >= first) & (self.slot_minute < end)
        minutes = self.slot_minute[inside]
        out[minutes - first] = self.values[row][inside]
        if keep is not None:
            out[~keep] = 0.0
        for a, b in left_out:
            out[max(a - first, 0) : max(b - first, 0)] = 0.0
        return out

    def sums(
        self,
        spans: Mapping[int, tuple[int, int]],
        excluded: Mapping[int, list[tuple[int, int]]] | None = None,
        parts: Mapping[int, bool] | None = None,
        night_of: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> dict[int, tuple[float, float, float]]:
        """Patient id -> (n, negative labels, negative mass) over its minutes ``[first, end)`` less its excluded
        minute ranges (call :meth:`refresh` for a range holding them first); patients whose minutes are not all
        loaded yet are left out.  ``parts``: patient id -> True (only the night minutes, ``night_of(minutes)``
        says which) or False (only the others) for the patients whose baseline reads one part of the day."""
        excluded = excluded or {}
        parts = parts or {}
        if parts and night_of is None:
            raise ValueError("parts need night_of")
        night = None
        if parts and night_of is not None:
            used = self.slot_minute != _NO_BUCKET
            night = np.zeros(len(self.slot_minute), bool)
            night[used] = night_of(self.slot_minute[used])
        by_span: dict[tuple[int, int], list[int]] = {}
        for pid, span in spans.items():
            if self.lo is None or self.hi is None or span[0] < self.lo or span[1] > self.hi or pid not in self.rows:
                raise RuntimeError("refresh the baseline cache for these minutes and patients first")
            by_span.setdefault(span, []).append(pid)
        out: dict[int, tuple[float, float, float]] = {}
        for (first, end), pids in by_span.items():
            if self.ready_from is None or first < self.ready_from:
                continue  # still loading
            mask = (self.slot_minute >= first) & (self.slot_minute < end)
            plain = [pid for pid in pids if not excluded.get(pid) and pid not in parts]
            if plain:
                rows = np.array([self.rows[pid] for pid in plain], dtype=np.int64)
                totals = self.values[rows][:, mask, :].sum(axis=1)
                out.update({pid: tuple(totals[i].tolist()) for i, pid in enumerate(plain)})  # type: ignore[misc]
            for pid in pids:
                if not excluded.get(pid) and pid not in parts:
                    continue
                keep = mask.copy()
                if night is not None and pid in parts:
                    keep &= night if parts[pid] else ~night
                for a, b in excluded.get(pid, []):
                    keep &= ~((self.slot_minute >= a) & (self.slot_minute < b))
                out[pid] = tuple(self.values[self.rows[pid]][keep, :].sum(axis=0).tolist())  # type: ignore[assignment]
        return out


_WEB_CACHES: weakref.WeakKeyDictionary[Any, BaselineCache] = weakref.WeakKeyDictionary()
_WEB_CACHES_LOCK = threading.Lock()
WEB_FORGET_S = 900.0


def web_baseline_cache(session: Session) -> BaselineCache:
    """This process's baseline cache for the session's database (the tiles and pages of the web app)."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    with _WEB_CACHES_LOCK:
        cache = _WEB_CACHES.get(engine)
        if cache is None:
            cache = _WEB_CACHES[engine] = BaselineCache(forget_s=WEB_FORGET_S)
        return cache


def _epoch(at: datetime) -> float:
    return at.astimezone(UTC).timestamp()


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
