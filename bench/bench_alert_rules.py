"""Alert rule quality on labelled synthetic patient timelines, through the real classifier and the real rule.

Each simulated patient-day is 24 h of mostly happy / relaxed faces with known sad or angry episodes of
5-30 min (most of an episode's expressions are of its class, the rest the patient's usual ones), observed at
1-2 observations/s with missed detections and missing-face gaps of 1-10 min.  A face holds its expression
for a few seconds (the same image for consecutive observations, ``--dwell-s``).  Faces (``angry``, ``happy``,
``neutral`` = relaxed, ``sad``) come from the part of FER-2013 ``train/`` that the model's config held out from
its training (``--faces validation``, the default: choose settings on it) or from PublicTest (``--faces
publictest``: report on it); each distinct face is classified once by the
shipped model (``areya.emotion.inference.EmotionClassifier``, whatever is in ``models/areya-fer`` now, or
``--model``) and its calibrated probabilities are reused for every observation that samples it.

The replay drives the real rule, :func:`areya.alerts.rules.evaluate_negative`, on an injected clock (a tick
every ``scheduler_tick_s``), with the window aggregates (:class:`areya.alerts.rules.WindowStats`) the SQL
queries would return, the hysteresis, and a clinician who resolves each alert by hand 2-10 min after it opens
unless the rule resolved it first (the cool-down then decides whether it reopens).  An alert opened between an
episode's start and ``window_s`` after its end belongs to the episode; any other is a false alert.

The per-patient baseline (``negative_baseline_s`` > 0) is replayed from the timeline's own observations exactly as
the engine computes it (:func:`areya.alerts.rules.baseline_minutes`, :func:`~areya.alerts.rules.excluded_minutes`
on per-minute sums, alert periods left out) and passed to the real rule.  Each patient-day is preceded by
``--history-h`` hours of the same patient's previous day (same usual expressions and observation rate, its own
episodes): every rule runs through them, only alerts opened during the day are counted, so that the baseline is
as on any day of a stay but the first (``--history-h 0``: the admission day, no baseline for the first hour).

    nice python -m bench.bench_alert_rules [--faces validation|publictest] [--patient-days 20] [--seed 7]
                                           [--few-settings] [--quick]

Prints the model, the seed, the patients' usual scores and the peak scores of episodes, and a markdown table (per
rule and setting): sensitivity for episodes >= 10 min (and 5-10 min), false alerts per patient-day (ordinary and
sad-looking patients apart), median / p90 time to alert, alerts per detected episode.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from areya.alerts.evidence import measure_name
from areya.alerts.rules import (
    Baseline,
    ManualResolve,
    RuleParams,
    WindowStats,
    baseline_minutes,
    evaluate_negative,
    excluded_minutes,
    night_minutes,
    usual_high,
)
from areya.db.models import LABELS4

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
T0_MINUTE = int(T0.timestamp()) // 60
DAY_S = 86_400
FACE_FOLDERS = {"angry": "angry", "happy": "happy", "relaxed": "neutral", "sad": "sad"}
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fer2013" / "publictest"
TARGETS = (
    "sensitivity >= 90 % (episodes >= 10 min), <= 1 false alert / patient-day, median time to alert "
    "<= 5 min, <= 1.1 alerts per episode"
)


# --------------------------------------------------------------------------- faces


@dataclass
class FaceBank:
    """Calibrated 4-class probabilities of every face, per source class (classified once)."""

    probs: dict[str, np.ndarray]  # class -> (n_faces, 4) in LABELS4 order
    model_version: str

    @classmethod
    def classify(cls, faces: dict[str, list[np.ndarray]], model: str | None) -> FaceBank:
        from areya.emotion.inference import EmotionClassifier

        classifier = EmotionClassifier.load(model)
        out = {
            label: np.stack([r.probs4 for r in classifier.classify(crops)]).astype(np.float64)
            for label, crops in faces.items()
        }
        return cls(out, classifier.model_version)

    @classmethod
    def classify_through_ward(
        cls, faces: dict[str, list[np.ndarray]], model: str | None, rng: np.random.Generator, cache: Path | None = None
    ) -> FaceBank:
        """As :meth:`classify`, but each face as the worker sees it (``bench/ward_path.py``: pasted into a ward
        scene, detected, cropped); faces the detector misses are left out (timelines model missed faces).

        ``cache``: the ward crops (resized to the classifier's 48x48 input exactly as it would resize them) are
        read from this ``.npz`` if it exists, else made and written there: the crops depend on the faces, the
        seed and the detector, not on the model, so several models can be compared on the same crops."""
        from areya.emotion.inference import prepare_crops
        from bench.ward_path import detector_for_bench, ward_crops

        if cache is not None and cache.is_file():
            with np.load(cache) as packed:
                kept = {label: list(packed[label]) for label in faces}
            print(
                f"  ward crops read from {cache}: "
                + ", ".join(f"{k} {len(v)} of {len(faces[k])}" for k, v in kept.items()),
                flush=True,
            )
            return cls.classify(kept, model)
        detector = detector_for_bench()
        kept = {}
        for label, crops in faces.items():
            found = [c for c in ward_crops(crops, detector, rng) if c is not None]
            kept[label] = list(prepare_crops(found)[..., 0].astype(np.uint8)) if found else []
            print(f"  {label}: {len(kept[label])} of {len(crops)} faces found in their ward scenes", flush=True)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(cache, **{k: np.asarray(v, np.uint8).reshape(-1, 48, 48) for k, v in kept.items()})
            print(f"  ward crops written to {cache}", flush=True)
        return cls.classify(kept, model)


def publictest_faces(data: Path, per_class: int, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """PublicTest faces per Areya class (``data``: its class folders)."""
    import cv2

    out: dict[str, list[np.ndarray]] = {}
    for label, folder in FACE_FOLDERS.items():
        files = sorted((data / folder).glob("*.jpg"))
        if not files:
            raise SystemExit(f"no faces under {data / folder}")
        if per_class and len(files) > per_class:
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        out[label] = [c for c in (cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files) if c is not None]
    return out


def validation_faces(
    fer_root: Path, model: str | None, per_class: int, rng: np.random.Generator
) -> dict[str, list[np.ndarray]]:
    """The faces of train/ that the model's own config held out from its training (its validation part): the
    faces to choose rule settings on, so that PublicTest stays for reporting."""
    from areya.emotion.dataset import holdout_split, load_dataset
    from areya.emotion.inference import resolve_model_path
    from areya.emotion.schemes import FER7_CLASSES
    from areya.emotion.train_config import TrainConfig

    cfg = TrainConfig.from_file(resolve_model_path(model).parent / "config.toml")
    if cfg.val_fraction <= 0:
        raise SystemExit("the model's config holds no validation part out (val_fraction = 0): use --faces publictest")
    _, val = holdout_split(load_dataset(fer_root, cfg.train_split), cfg.val_fraction, cfg.holdout_seed)
    out: dict[str, list[np.ndarray]] = {}
    for label, folder in FACE_FOLDERS.items():
        idx = np.flatnonzero(val.labels7 == FER7_CLASSES.index(folder))
        if per_class and idx.size > per_class:
            idx = np.sort(rng.choice(idx, per_class, replace=False))
        out[label] = [val.images[i] for i in idx]
    return out


# --------------------------------------------------------------------------- timelines


@dataclass
class Episode:
    start: float  # seconds since the patient's day start
    end: float
    label: str

    @property
    def minutes(self) -> float:
        return (self.end - self.start) / 60


@dataclass
class Timeline:
    """One patient-day of observations: times (s), probabilities (n, 4), labels (n,) as LABELS4 indices."""

    times: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    episodes: list[Episode]
    kind: str  # typical | sad-looking
    happy: float = 0.5  # the usual share of happy (vs relaxed) expressions
    rate: float = 1.5  # observations per second
    start: float = 0.0  # the first observations (< 0: the previous day's last hours, see with_history)
    _minutes: MinuteSums | None = field(default=None, repr=False)

    def minute_sums(self) -> MinuteSums:
        if self._minutes is None:
            self._minutes = MinuteSums.of(self)
        return self._minutes


@dataclass
class MinuteSums:
    """Prefix sums per whole minute (absolute minute numbers, as the engine's SQL buckets) of n, observations
    labelled angry or sad, and p_angry + p_sad: the baseline's sums over any minutes in O(1)."""

    first: int
    cum: np.ndarray  # (minutes + 1, 3)
    per: np.ndarray | None = None  # (minutes, 3): the sums of each minute
    _night: dict[tuple[tuple[int, int], str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def of(cls, tl: Timeline) -> MinuteSums:
        minutes = T0_MINUTE + np.floor(tl.times / 60).astype(np.int64)
        first = int(minutes[0]) if len(minutes) else T0_MINUTE
        idx = minutes - first
        per = np.zeros((int(idx[-1]) + 1 if len(idx) else 1, 3))
        negative = np.isin(tl.labels, [LABELS4.index("angry"), LABELS4.index("sad")]).astype(float)
        np.add.at(per, idx, np.stack([np.ones(len(idx)), negative, tl.probs[:, 0] + tl.probs[:, 3]], axis=1))
        return cls(first, np.concatenate([np.zeros((1, 3)), np.cumsum(per, axis=0)]), per)

    def total(self, a: int, b: int, part: tuple[bool, RuleParams] | None = None) -> np.ndarray:
        """Sums over the minutes ``[a, b)``; ``part`` (night?, params): only the minutes of that part of the day
        (:func:`areya.alerts.rules.night_minutes`)."""
        cum = self.cum if part is None else self._part_cum(*part)
        top = len(cum) - 1
        lo, hi = min(max(a - self.first, 0), top), min(max(b - self.first, 0), top)
        return cum[hi] - cum[lo] if hi > lo else np.zeros(3)

    def minutes(
        self, a: int, b: int, part: tuple[bool, RuleParams] | None, left_out: list[tuple[int, int]]
    ) -> np.ndarray:
        """(b - a, 3) sums of each minute of ``[a, b)`` (zeros outside the timeline, in the other part of the day
        and in the ``left_out`` minute ranges)."""
        assert self.per is not None
        out = np.zeros((max(b - a, 0), 3))
        lo, hi = max(a, self.first), min(b, self.first + len(self.per))
        if hi > lo:
            out[lo - a : hi - a] = self.per[lo - self.first : hi - self.first]
        if part is not None:
            night = night_minutes(np.arange(a, b), part[1])
            out[night != part[0]] = 0.0
        for x, y in left_out:
            out[max(x - a, 0) : max(y - a, 0)] = 0.0
        return out

    def _part_cum(self, night: bool, params: RuleParams) -> np.ndarray:
        key = (params.night_hours, params.timezone)
        if key not in self._night:
            assert self.per is not None
            is_night = night_minutes(self.first + np.arange(len(self.per)), params)
            zero = np.zeros((1, 3))
            self._night[key] = (
                np.concatenate([zero, np.cumsum(self.per * ~is_night[:, None], axis=0)]),
                np.concatenate([zero, np.cumsum(self.per * is_night[:, None], axis=0)]),
            )
        return self._night[key][int(night)]


def make_timeline(
    rng: np.random.Generator,
    bank: FaceBank,
    *,
    sad_looking: bool,
    dwell_s: float,
    purity: float,
    happy: float | None = None,
    rate: float | None = None,
) -> Timeline:
    """A patient-day (see the module doc); everything drawn from ``rng`` (``happy``, ``rate``: given, as for the
    same patient's previous day, instead of drawn)."""
    if happy is None:
        happy = rng.uniform(0.3, 0.8)
    baseline = {"happy": happy, "relaxed": 1.0 - happy, "sad": 0.0, "angry": 0.0}
    if sad_looking:  # a patient who often looks sad: a quarter of the usual expressions are sad faces
        baseline = {k: v * 0.75 for k, v in baseline.items()} | {"sad": 0.25}
    episodes: list[Episode] = []
    t = rng.uniform(20, 120) * 60
    while True:
        length = rng.uniform(5, 30) * 60
        if t + length > DAY_S - 30 * 60:
            break
        episodes.append(Episode(t, t + length, "sad" if rng.random() < 0.5 else "angry"))
        t += length + rng.uniform(60, 300) * 60
    # expression segments: one face image held for an exponential dwell time
    n_seg = int(DAY_S / dwell_s * 1.3) + 16
    seg_edges = np.cumsum(rng.exponential(dwell_s, n_seg))
    seg_edges = seg_edges[seg_edges < DAY_S]
    seg_start = np.concatenate([[0.0], seg_edges])
    classes = list(FACE_FOLDERS)
    base_p = np.array([baseline[c] for c in classes])
    seg_class = rng.choice(len(classes), size=len(seg_start), p=base_p / base_p.sum())
    for ep in episodes:
        inside = (seg_start >= ep.start) & (seg_start < ep.end)
        hit = inside & (rng.random(len(seg_start)) < purity)
        seg_class[hit] = classes.index(ep.label)
    seg_face = np.array([rng.integers(len(bank.probs[classes[c]])) for c in seg_class])
    # observations: 1-2 per second, 15 % of detections missed, missing-face gaps
    if rate is None:
        rate = rng.uniform(1.0, 2.0)
    times = np.arange(rng.uniform(0, 1 / rate), DAY_S, 1 / rate)
    times = times + rng.uniform(-0.2, 0.2, len(times)) / rate
    keep = rng.random(len(times)) >= 0.15
    g = rng.exponential(45 * 60)
    while g < DAY_S:
        span = rng.uniform(1, 10) * 60
        keep &= ~((times >= g) & (times < g + span))
        g += span + rng.exponential(45 * 60)
    times = np.sort(times[keep & (times >= 0) & (times < DAY_S)])
    seg = np.searchsorted(seg_start, times, side="right") - 1
    probs = np.empty((len(times), 4))
    for c, label in enumerate(classes):
        pick = seg_class[seg] == c
        probs[pick] = bank.probs[label][seg_face[seg[pick]]]
    labels = probs.argmax(axis=1)
    return Timeline(times, probs, labels, episodes, "sad-looking" if sad_looking else "typical", happy, rate)


def with_history(
    tl: Timeline, rng: np.random.Generator, bank: FaceBank, hours: float, *, dwell_s: float, purity: float
) -> Timeline:
    """``tl`` preceded by the last ``hours`` of the same patient's previous day (drawn from ``rng``; its episodes
    end at least 30 min before the day starts, so no alert of the day can belong to one)."""
    if hours <= 0:
        return tl
    before = make_timeline(
        rng, bank, sad_looking=tl.kind == "sad-looking", dwell_s=dwell_s, purity=purity, happy=tl.happy, rate=tl.rate
    )
    keep = before.times >= DAY_S - hours * 3600
    return Timeline(
        np.concatenate([before.times[keep] - DAY_S, tl.times]),
        np.concatenate([before.probs[keep], tl.probs]),
        np.concatenate([before.labels[keep], tl.labels]),
        tl.episodes,
        tl.kind,
        tl.happy,
        tl.rate,
        start=-hours * 3600,
    )


# --------------------------------------------------------------------------- replay


@dataclass
class Setting:
    name: str
    params: RuleParams
    exclude_alerts: bool = True  # False: the baseline counts alert periods too (a bench-only variant)


@dataclass
class Outcome:
    """What one setting did on one timeline: alert open times and how each ended."""

    opens: list[float] = field(default_factory=list)


def window_arrays(tl: Timeline, ticks: np.ndarray, window_s: int) -> tuple[np.ndarray, ...]:
    """Per tick: n, label counts (k, 4), probability sums (k, 4), first/last observation time in the window."""
    hi = np.searchsorted(tl.times, ticks, side="right")
    lo = np.searchsorted(tl.times, ticks - window_s, side="right")
    onehot = np.zeros((len(tl.times) + 1, 4))
    onehot[np.arange(1, len(tl.times) + 1), tl.labels] = 1.0
    cum_counts = np.cumsum(onehot, axis=0)
    cum_probs = np.concatenate([np.zeros((1, 4)), np.cumsum(tl.probs, axis=0)])
    return hi - lo, cum_counts[hi] - cum_counts[lo], cum_probs[hi] - cum_probs[lo], lo, hi


def replay_baseline(
    tl: Timeline, params: RuleParams, now: datetime, alert_spans: list[list[datetime | None]], exclude: bool = True
) -> Baseline:
    """The patient's baseline at ``now`` as the engine computes it (:func:`areya.alerts.window.patient_baselines`):
    the whole minutes of the period before the window, the minutes of the alerts so far left out."""
    first, end = baseline_minutes(now, params.window_s, params.baseline_s)
    sums = tl.minute_sums()
    part = (params.is_night(now), params) if params.baseline_by_night else None
    total = sums.total(first, end, part)
    if exclude and alert_spans:
        spans = [(a, b) for a, b in alert_spans if a is not None]
        for a, b in excluded_minutes(spans, params.window_s, first, end):
            total = total - sums.total(a, b, part)
    name = None if part is None else "night" if part[0] else "day"
    high = None
    if params.baseline_quantile > 0:
        high = usual_high(
            sums.minutes(
                first,
                end,
                part,
                excluded_minutes(spans, params.window_s, first, end) if exclude and alert_spans else [],
            ),
            params,
        )
    return Baseline(int(round(total[0])), int(round(total[1])), float(total[2]), part=name, high=high)


def replay(
    tl: Timeline,
    params: RuleParams,
    tick_s: float,
    rng: np.random.Generator,
    resolve_after: tuple[float, float],
    day_s: float = DAY_S,
    exclude_alerts: bool = True,
    finding_of: Callable[[float], str | None] | None = None,
) -> Outcome:
    """Run the real rule tick by tick over one timeline, from its start (see the module doc); alerts opened before
    the day (in its history) are not reported.  ``finding_of(open_t)``: what the clinician who resolves the alert
    opened at ``open_t`` finds at the bedside (``distress_seen`` / ``no_distress_seen``; None: not said)."""
    ticks = np.arange(tl.start + tick_s, day_s + tick_s / 2, tick_s)
    n, counts, sums, lo, hi = window_arrays(tl, ticks, params.window_s)
    out = Outcome()
    open_at: float | None = None
    opened_level = latest = 0.0
    below: datetime | None = None
    manual_at: float | None = None
    last_manual: ManualResolve | None = None
    spans: list[list[datetime | None]] = []  # (opened_at, resolved_at) of the alerts, for the baseline
    keep_s = params.baseline_s + params.window_s + 120
    memo_key: tuple | None = None  # the baseline changes with its minutes, the part of the day and the alerts
    memo: Baseline | None = None
    for k, t in enumerate(ticks):
        now = T0 + timedelta(seconds=float(t))
        if open_at is not None and manual_at is not None and t >= manual_at:  # the clinician resolves it
            finding = finding_of(open_at) if finding_of is not None else None
            last_manual = ManualResolve(now, max(opened_level, latest), finding)
            open_at = manual_at = below = None
            spans[-1][1] = now
        baseline = None
        if params.baseline_s > 0:
            if spans and spans[0][1] is not None and (now - spans[0][1]).total_seconds() > keep_s:
                spans = [sp for sp in spans if sp[1] is None or (now - sp[1]).total_seconds() <= keep_s]
            key = (
                baseline_minutes(now, params.window_s, params.baseline_s),
                params.is_night(now),
                len(spans),
                spans[-1][1] if spans else None,
            )
            if key != memo_key:
                memo_key, memo = key, replay_baseline(tl, params, now, spans, exclude_alerts)
            baseline = memo
        nk = int(n[k])
        stats = None
        if nk:
            c = counts[k]
            s = sums[k]
            stats = WindowStats(
                0,
                nk,
                dict(zip(LABELS4, map(int, c), strict=True)),
                float(s[0] + s[3]),
                dict(zip(LABELS4, map(float, s), strict=True)),
                T0 + timedelta(seconds=float(tl.times[lo[k]])),
                T0 + timedelta(seconds=float(tl.times[hi[k] - 1])),
            )
        decision = evaluate_negative(
            stats,
            params,
            now=now,
            is_open=open_at is not None,
            below_close_since=below,
            last_manual=last_manual,
            baseline=baseline,
        )
        if decision.action == "open" and stats is not None:
            open_at = float(t)
            opened_level = latest = stats.score(params.measure)
            below = None
            manual_at = t + rng.uniform(*resolve_after) if resolve_after[1] > 0 else None
            if open_at >= 0:
                out.opens.append(open_at)
            spans.append([now, None])
        elif decision.action == "resolve":
            open_at = manual_at = below = None
            spans[-1][1] = now
        elif open_at is not None:
            below = decision.below_close_since
            if stats is not None and nk >= params.min_obs:
                latest = stats.score(params.measure)
    return out


@dataclass
class Figures:
    long_total: int = 0
    long_detected: int = 0
    short_total: int = 0
    short_detected: int = 0
    false_alerts: int = 0
    false_sad_looking: int = 0
    episode_alerts: int = 0
    detected: int = 0
    delays: list[float] = field(default_factory=list)
    sad_long_total: int = 0  # the sad-looking patients' episodes >= 10 min
    sad_long_detected: int = 0
    sad_delays: list[float] = field(default_factory=list)


def score(timelines: list[Timeline], outcomes: list[Outcome], window_s: int) -> Figures:
    fig = Figures()
    for tl, out in zip(timelines, outcomes, strict=True):
        claimed = [False] * len(out.opens)
        for ep in tl.episodes:
            mine = [i for i, t in enumerate(out.opens) if ep.start <= t <= ep.end + window_s]
            for i in mine:
                claimed[i] = True
            long_ = ep.minutes >= 10
            sad = tl.kind == "sad-looking"
            if long_:
                fig.long_total += 1
                fig.sad_long_total += sad
            else:
                fig.short_total += 1
            if not mine:
                continue
            fig.detected += 1
            fig.episode_alerts += len(mine)
            if long_:
                fig.long_detected += 1
                fig.delays.append(out.opens[mine[0]] - ep.start)
                if sad:
                    fig.sad_long_detected += 1
                    fig.sad_delays.append(out.opens[mine[0]] - ep.start)
            else:
                fig.short_detected += 1
        false = claimed.count(False)
        fig.false_alerts += false
        if tl.kind == "sad-looking":
            fig.false_sad_looking += false
    return fig


def engine_check(tl: Timeline, params: RuleParams, hours: float, tick_s: float) -> tuple[list[float], list[float]]:
    """The first ``hours`` of one timeline through the real :class:`areya.alerts.engine.AlertEngine` (temporary
    migrated SQLite, SQL window and baseline, injected clock; the observations of its history are stored too)
    and through :func:`replay` (no manual resolves): the alert open times of both, which must be equal."""
    import tempfile

    from sqlalchemy import insert, select

    from areya.alerts.engine import AlertEngine
    from areya.config import load_settings
    from areya.db.engine import create_db_engine, create_session_factory
    from areya.db.migrate import upgrade
    from areya.db.models import Alert, Bed, BedAssignment, Observation, Patient, Ward

    end = hours * 3600
    with tempfile.TemporaryDirectory(prefix="areya-bench-rules-") as tmp:
        settings = load_settings(env={"AREYA_DATA_DIR": tmp}).replace(
            **params.as_settings(), negative_measure=params.measure
        )
        engine = create_db_engine(settings)
        upgrade(settings, engine=engine)
        created = T0 - timedelta(days=1)
        with engine.begin() as conn:
            conn.execute(insert(Ward), [{"id": 1, "name": "W", "created_at": created}])
            conn.execute(insert(Bed), [{"id": 1, "ward_id": 1, "label": "1"}])
            conn.execute(
                insert(Patient),
                [{"id": 1, "mrn": "M1", "display_name": "P1", "admitted_at": created, "status": "admitted"}],
            )
            conn.execute(insert(BedAssignment), [{"patient_id": 1, "bed_id": 1, "start_at": created}])
            pick = tl.times < end
            rows = []
            for k, (t, p, lab) in enumerate(zip(tl.times[pick], tl.probs[pick], tl.labels[pick], strict=True)):
                at = T0 + timedelta(seconds=float(t))
                rows.append(
                    {
                        "patient_id": 1,
                        "bed_id": 1,
                        "camera_id": None,
                        "captured_at": at,
                        "frame_id": f"f{k}",
                        "face_index": 0,
                        "box_x": 0.1,
                        "box_y": 0.1,
                        "box_w": 0.1,
                        "box_h": 0.1,
                        "p_angry": float(p[0]),
                        "p_happy": float(p[1]),
                        "p_relaxed": float(p[2]),
                        "p_sad": float(p[3]),
                        "probs7": [1 / 7] * 7,
                        "label4": LABELS4[int(lab)],
                        "label7": "neutral",
                        "confidence4": float(p.max()),
                        "model_version": "bench",
                        "created_at": at,
                    }
                )
            conn.execute(insert(Observation), rows)
        alert_engine = AlertEngine(settings, create_session_factory(engine))
        t = tick_s
        while t <= end:
            alert_engine.tick(T0 + timedelta(seconds=t), retention=False)
            t += tick_s
        with create_session_factory(engine)() as session:
            sql_opens = [(a - T0).total_seconds() for a in session.scalars(select(Alert.opened_at).order_by(Alert.id))]
        engine.dispose()
    short = Timeline(tl.times[tl.times < end], tl.probs[tl.times < end], tl.labels[tl.times < end], [], tl.kind)
    replayed = replay(short, params, tick_s, np.random.default_rng(0), (0.0, 0.0), day_s=end)
    return sql_opens, replayed.opens


def baseline_text(setting: Setting) -> str:
    p = setting.params
    if p.baseline_s <= 0:
        return "none"
    text = f"{p.baseline_s / 3600:g} h +{p.baseline_margin:.2f}, max {p.baseline_ceiling:.2f}, {p.baseline_min_obs} obs"
    return text if setting.exclude_alerts else text + ", alert periods counted"


def row(setting: Setting, fig: Figures, days: int, sad_days: int) -> list[str]:
    p = setting.params
    sens = fig.long_detected / fig.long_total if fig.long_total else float("nan")
    short = fig.short_detected / fig.short_total if fig.short_total else float("nan")
    med = np.median(fig.delays) / 60 if fig.delays else float("nan")
    p90 = np.percentile(fig.delays, 90) / 60 if fig.delays else float("nan")
    per_ep = fig.episode_alerts / fig.detected if fig.detected else float("nan")
    typical_days = days - sad_days
    fa_typ = (fig.false_alerts - fig.false_sad_looking) / typical_days if typical_days else float("nan")
    fa_sad = fig.false_sad_looking / sad_days if sad_days else float("nan")
    ok = sens >= 0.9 and fa_typ <= 1.0 and med <= 5.0 and per_ep <= 1.1
    sad_part = "-"
    if fig.sad_long_total:
        sad_med = np.median(fig.sad_delays) / 60 if fig.sad_delays else float("nan")
        sad_p90 = np.percentile(fig.sad_delays, 90) / 60 if fig.sad_delays else float("nan")
        sad_part = f"{fig.sad_long_detected / fig.sad_long_total:.0%} / {sad_med:.1f} / {sad_p90:.1f}"
    return [
        setting.name,
        measure_name(p.measure),
        f"{p.window_s // 60} min",
        f"{p.open_share:.2f} / {p.close_share:.2f}",
        f"{p.cooldown_s // 60} min +{p.reopen_margin:.2f}" if p.cooldown_s else "none",
        baseline_text(setting),
        f"{sens:.0%} ({fig.long_detected}/{fig.long_total})",
        f"{short:.0%}",
        f"{fa_typ:.2f}",
        f"{fa_sad:.2f}" if sad_days else "-",
        f"{med:.1f}",
        f"{p90:.1f}",
        f"{per_ep:.2f}",
        sad_part,
        "yes" if ok else "no",
    ]


HEADER = [
    "setting",
    "score",
    "window",
    "open / close",
    "cool-down",
    "baseline",
    "sensitivity >= 10 min",
    "5-10 min",
    "false / patient-day",
    "false / day, sad-looking",
    "median min to alert",
    "p90 min",
    "alerts / episode",
    "sad-looking: sensitivity / median / p90 min",
    "meets targets",
]


# the candidate baseline (the engine check's when the shipped defaults have none; the centre of baseline_grid)
BASELINE_CHECK = {"baseline_s": 6 * 3600, "baseline_margin": 0.25, "baseline_ceiling": 0.60, "baseline_min_obs": 3600}


def score_profile(timelines: list[Timeline], params: RuleParams, tick_s: float) -> str:
    """The figures the baseline's margin and ceiling are chosen on: each patient's usual score (the mean over the
    day outside episodes) and the peak window score of each episode >= 10 min (ticks with enough observations,
    from its start to one window after its end), by kind of patient."""
    lines = []
    for kind in ("typical", "sad-looking"):
        usual, peaks = [], []
        for tl in timelines:
            if tl.kind != kind:
                continue
            day = tl.times >= 0
            calm = day.copy()
            for ep in tl.episodes:
                calm &= ~((tl.times >= ep.start) & (tl.times < ep.end + params.window_s))
            usual.append(float((tl.probs[calm, 0] + tl.probs[calm, 3]).mean()))
            ticks = np.arange(tick_s, DAY_S + tick_s / 2, tick_s)
            n, _counts, sums, _lo, _hi = window_arrays(tl, ticks, params.window_s)
            scores = np.where(n >= params.min_obs, (sums[:, 0] + sums[:, 3]) / np.maximum(n, 1), np.nan)
            for ep in tl.episodes:
                inside = (ticks >= ep.start) & (ticks <= ep.end + params.window_s)
                if ep.minutes >= 10 and np.isfinite(scores[inside]).any():
                    peaks.append(float(np.nanmax(scores[inside])))
        if not usual:
            continue
        q = np.percentile(peaks, [5, 10, 25, 50]) if peaks else [float("nan")] * 4
        lines.append(
            f"{kind}: usual {measure_name(params.measure)} (day outside episodes) median {np.median(usual):.2f} "
            f"[{min(usual):.2f}-{max(usual):.2f}] over {len(usual)} patients; peak 5-min score of the "
            f"{len(peaks)} episodes >= 10 min: p5 {q[0]:.2f}, p10 {q[1]:.2f}, p25 {q[2]:.2f}, median {q[3]:.2f}"
        )
    return "\n".join(lines)


def baseline_grid(base: RuleParams, few: bool) -> list[Setting]:
    """The per-patient baseline on the shipped plain thresholds, around the candidate (:data:`BASELINE_CHECK`):
    margins, ceilings, periods, and (bench only) the alert periods counted in the baseline."""
    plain = replace(base, baseline_s=0)
    center = BASELINE_CHECK
    margin, ceiling = center["baseline_margin"], center["baseline_ceiling"]
    variants: list[tuple[str, dict, bool]] = [
        (f"6h+{m:.2f} max {ceiling:.2f}", {"baseline_margin": m}, True) for m in (0.15, 0.20, 0.25, 0.30, 0.35, 0.40)
    ]
    variants += [(f"6h+{margin:.2f} max {c:.2f}", {"baseline_ceiling": c}, True) for c in (0.55, 0.65, 0.75)]
    variants += [
        (f"3h+{margin:.2f} max {ceiling:.2f}", {"baseline_s": 3 * 3600, "baseline_min_obs": 1800}, True),
        (f"12h+{margin:.2f} max {ceiling:.2f}", {"baseline_s": 12 * 3600}, True),
        (f"6h+{margin:.2f} max {ceiling:.2f} 1800 obs", {"baseline_min_obs": 1800}, True),
        (f"6h+{margin:.2f} max {ceiling:.2f} with alerts", {}, False),
    ]
    if few:  # the candidate alone
        variants = [v for v in variants if v[1] == {"baseline_margin": margin}]
    return [
        Setting(f"baseline-{name}", replace(plain, **(center | changes)), exclude)
        for name, changes, exclude in variants
    ]


def settings_grid(base: RuleParams, few: bool) -> list[Setting]:
    """Candidate settings: both scores, a few windows and open thresholds (close = open - 0.08 / 0.10), without
    the per-patient baseline."""
    base = replace(base, baseline_s=0)
    grid: list[Setting] = []
    prob = ((240, (0.46, 0.50)), (300, (0.44, 0.46, 0.48, 0.50, 0.52, 0.54)), (420, (0.46, 0.50)))
    labels = ((300, (0.30, 0.35)), (600, (0.30, 0.35)))
    if few:
        prob, labels = ((300, (0.50,)),), ((600, (0.30,)),)
    for window, thresholds in prob:
        for thr in thresholds:
            grid.append(
                Setting(
                    f"prob-{window // 60}m-{thr:.2f}",
                    replace(
                        base,
                        measure="probability",
                        window_s=window,
                        min_obs=window // 5,
                        open_share=thr,
                        close_share=round(thr - 0.08, 2),
                    ),
                )
            )
    for window, thresholds in labels:
        for thr in thresholds:
            grid.append(
                Setting(
                    f"labels-{window // 60}m-{thr:.2f}",
                    replace(
                        base,
                        measure="labels",
                        window_s=window,
                        min_obs=window // 5,
                        open_share=thr,
                        close_share=round(thr - 0.10, 2),
                    ),
                )
            )
    return grid


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patient-days", type=int, default=40, help="simulated patient-days (one patient each)")
    ap.add_argument(
        "--sad-looking",
        type=float,
        default=0.2,
        help="share of patients who often look sad (a quarter of their usual faces are sad)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", default=None, help="model name or path (default: the shipped areya-fer)")
    ap.add_argument(
        "--faces",
        choices=("validation", "publictest"),
        default="validation",
        help="validation: the part of train/ held out from the model's training (choose settings on it); "
        "publictest: FER-2013 PublicTest (report figures on it)",
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER-2013 PublicTest class folders")
    ap.add_argument("--fer-root", type=Path, default=DEFAULT_DATA.parent, help="FER-2013 root (holds train/)")
    ap.add_argument("--faces-per-class", type=int, default=0, help="classify at most this many faces per class")
    ap.add_argument("--dwell-s", type=float, default=4.0, help="mean seconds a face holds one expression")
    ap.add_argument("--purity", type=float, default=0.8, help="share of an episode's expressions of its class")
    ap.add_argument(
        "--resolve-after-min",
        default="2,10",
        help="a clinician resolves each alert this many minutes after it opens ('lo,hi'; 0 = never)",
    )
    ap.add_argument("--tick-s", type=float, default=5.0)
    ap.add_argument(
        "--through-ward",
        action="store_true",
        help="classify each face as the worker sees it: pasted into a generated ward scene, found by "
        "the configured detector, cropped by the worker's rule (bench/ward_path.py)",
    )
    ap.add_argument(
        "--crops-cache",
        type=Path,
        default=None,
        help="with --through-ward: read the ward crops from this .npz, or make them and write it there "
        "(they do not depend on the model: compare models on the same crops)",
    )
    ap.add_argument("--few-settings", action="store_true", help="the candidate settings alone (fewer rows)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 patient-days (one sad-looking), 8 faces per class, 1 h of history, --few-settings, "
        "a 15-minute engine check",
    )
    ap.add_argument(
        "--grid",
        choices=("all", "plain", "baseline"),
        default="all",
        help="which candidate rows beside the shipped defaults: plain thresholds, baseline, or all",
    )
    ap.add_argument(
        "--history-h",
        type=float,
        default=12.0,
        help="hours of each patient's previous day replayed before the day (not counted): the baseline's "
        "history; 0 = the admission day",
    )
    ap.add_argument(
        "--engine-check-hours",
        type=float,
        default=0.0,
        help="also run this many hours of two patients (an ordinary one with the shipped defaults, a sad-looking one "
        "with the per-patient baseline) through the real AlertEngine on SQLite and check that it opens the same "
        "alerts as the replay (no manual resolves)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.patient_days, args.sad_looking, args.faces_per_class, args.history_h = 2, 0.5, 8, 1.0
        args.few_settings = True
        args.engine_check_hours = args.engine_check_hours or 0.25
    lo_hi = tuple(float(x) * 60 for x in args.resolve_after_min.split(","))
    resolve_after = (lo_hi[0], lo_hi[-1])

    from areya.config import Settings

    faces_dir = args.fer_root / "train" if args.faces == "validation" else args.data
    if not faces_dir.is_dir():
        print(f"needs the FER-2013 faces at {faces_dir} (--fer-root / --data)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    if args.faces == "validation":
        faces = validation_faces(args.fer_root.resolve(), args.model, args.faces_per_class, rng)
    else:
        faces = publictest_faces(args.data.resolve(), args.faces_per_class, rng)
    if args.through_ward:
        bank = FaceBank.classify_through_ward(
            faces, args.model, np.random.default_rng([args.seed, 99]), cache=args.crops_cache
        )
    else:
        bank = FaceBank.classify(faces, args.model)
    classified = time.perf_counter() - started
    sad_days = int(round(args.patient_days * args.sad_looking))
    timelines = [
        make_timeline(rng, bank, sad_looking=i < sad_days, dwell_s=args.dwell_s, purity=args.purity)
        for i in range(args.patient_days)
    ]
    # each patient's previous day from its own random stream: the days themselves are drawn as without history
    timelines = [
        with_history(
            tl,
            np.random.default_rng([args.seed, 1000 + i]),
            bank,
            args.history_h,
            dwell_s=args.dwell_s,
            purity=args.purity,
        )
        for i, tl in enumerate(timelines)
    ]
    shipped = RuleParams.from_settings(Settings())
    grid = [Setting("shipped defaults", shipped), Setting("shipped, no cool-down", replace(shipped, cooldown_s=0))]
    if shipped.baseline_s > 0:
        grid.append(Setting("shipped, no baseline", replace(shipped, baseline_s=0)))
    if args.grid in ("all", "plain"):
        grid += settings_grid(shipped, args.few_settings)
    if args.grid in ("all", "baseline"):
        grid += baseline_grid(shipped, args.few_settings)
    rows = []
    for setting in grid:
        outcomes = [
            replay(
                tl,
                setting.params,
                args.tick_s,
                np.random.default_rng([args.seed, i]),
                resolve_after,
                exclude_alerts=setting.exclude_alerts,
            )
            for i, tl in enumerate(timelines)
        ]
        rows.append(row(setting, score(timelines, outcomes, setting.params.window_s), args.patient_days, sad_days))
    n_obs = sum(int((tl.times >= 0).sum()) for tl in timelines)
    n_history = sum(int((tl.times < 0).sum()) for tl in timelines)
    episodes = sum(len(tl.episodes) for tl in timelines)
    print(
        f"model {bank.model_version}; faces: {args.faces}; seed {args.seed}; "
        f"{args.patient_days} patient-days ({sad_days} sad-looking), "
        f"{episodes} episodes, {n_obs} observations (+ {n_history} in {args.history_h:g} h of history each); "
        f"faces classified once: {', '.join(f'{k} {len(v)}' for k, v in bank.probs.items())} ({classified:.0f} s); "
        f"dwell {args.dwell_s:g} s, purity {args.purity:g}, manual resolve after {args.resolve_after_min} min; "
        f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs"
    )
    print(score_profile(timelines, shipped, args.tick_s))
    if args.engine_check_hours > 0:
        with_baseline = shipped if shipped.baseline_s > 0 else replace(shipped, **BASELINE_CHECK)
        checks = [(timelines[-1], shipped, "an ordinary patient, shipped defaults")]
        if sad_days:
            checks.append(
                (
                    timelines[0],
                    with_baseline,
                    "a sad-looking patient, baseline " + baseline_text(Setting("", with_baseline)),
                )
            )
        for tl, params, what in checks:
            sql_opens, replay_opens = engine_check(tl, params, args.engine_check_hours, args.tick_s)
            same = "same" if sql_opens == replay_opens else "DIFFERENT"
            print(
                f"engine check ({args.engine_check_hours:g} h, {what}): AlertEngine on SQLite opened alerts at "
                f"{[round(x) for x in sql_opens]} s, the replay at {[round(x) for x in replay_opens]} s: {same}"
            )
    print(f"targets: {TARGETS}\n")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
