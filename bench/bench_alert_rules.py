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

    nice python bench/bench_alert_rules.py [--faces validation|publictest] [--patient-days 20] [--seed 7]

Prints the model, the seed and a markdown table (per rule and setting): sensitivity for episodes >= 10 min
(and 5-10 min), false alerts per patient-day, median / p90 time to alert, alerts per detected episode.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from areya.alerts.evidence import measure_name  # noqa: E402
from areya.alerts.rules import ManualResolve, RuleParams, WindowStats, evaluate_negative  # noqa: E402
from areya.db.models import LABELS4  # noqa: E402

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
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
        out = {label: np.stack([r.probs4 for r in classifier.classify(crops)]).astype(np.float64)
               for label, crops in faces.items()}
        return cls(out, classifier.model_version)

    @classmethod
    def classify_through_ward(cls, faces: dict[str, list[np.ndarray]], model: str | None,
                              rng: np.random.Generator) -> FaceBank:
        """As :meth:`classify`, but each face as the worker sees it (``bench/ward_path.py``: pasted into a ward
        scene, detected, cropped); faces the detector misses are left out (timelines model missed faces)."""
        from ward_path import detector_for_bench, ward_crops

        detector = detector_for_bench()
        kept = {}
        for label, crops in faces.items():
            kept[label] = [c for c in ward_crops(crops, detector, rng) if c is not None]
            print(f"  {label}: {len(kept[label])} of {len(crops)} faces found in their ward scenes", flush=True)
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


def validation_faces(fer_root: Path, model: str | None, per_class: int, rng: np.random.Generator
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


def make_timeline(
    rng: np.random.Generator, bank: FaceBank, *, sad_looking: bool, dwell_s: float, purity: float
) -> Timeline:
    """A patient-day (see the module doc); everything drawn from ``rng``."""
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
    return Timeline(times, probs, labels, episodes, "sad-looking" if sad_looking else "typical")


# --------------------------------------------------------------------------- replay


@dataclass
class Setting:
    name: str
    params: RuleParams


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


def replay(
    tl: Timeline,
    params: RuleParams,
    tick_s: float,
    rng: np.random.Generator,
    resolve_after: tuple[float, float],
    day_s: float = DAY_S,
) -> Outcome:
    """Run the real rule tick by tick over one timeline (see the module doc)."""
    ticks = np.arange(tick_s, day_s + tick_s / 2, tick_s)
    n, counts, sums, lo, hi = window_arrays(tl, ticks, params.window_s)
    out = Outcome()
    open_at: float | None = None
    opened_level = latest = 0.0
    below: datetime | None = None
    manual_at: float | None = None
    last_manual: ManualResolve | None = None
    for k, t in enumerate(ticks):
        now = T0 + timedelta(seconds=float(t))
        if open_at is not None and manual_at is not None and t >= manual_at:  # the clinician resolves it
            last_manual = ManualResolve(now, max(opened_level, latest))
            open_at = manual_at = below = None
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
                None,
                None,
            )
        decision = evaluate_negative(
            stats, params, now=now, is_open=open_at is not None, below_close_since=below, last_manual=last_manual
        )
        if decision.action == "open" and stats is not None:
            open_at = float(t)
            opened_level = latest = stats.score(params.measure)
            below = None
            manual_at = t + rng.uniform(*resolve_after) if resolve_after[1] > 0 else None
            out.opens.append(open_at)
        elif decision.action == "resolve":
            open_at = manual_at = below = None
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


def score(timelines: list[Timeline], outcomes: list[Outcome], window_s: int) -> Figures:
    fig = Figures()
    for tl, out in zip(timelines, outcomes, strict=True):
        claimed = [False] * len(out.opens)
        for ep in tl.episodes:
            mine = [i for i, t in enumerate(out.opens) if ep.start <= t <= ep.end + window_s]
            for i in mine:
                claimed[i] = True
            long_ = ep.minutes >= 10
            if long_:
                fig.long_total += 1
            else:
                fig.short_total += 1
            if not mine:
                continue
            fig.detected += 1
            fig.episode_alerts += len(mine)
            if long_:
                fig.long_detected += 1
                fig.delays.append(out.opens[mine[0]] - ep.start)
            else:
                fig.short_detected += 1
        false = claimed.count(False)
        fig.false_alerts += false
        if tl.kind == "sad-looking":
            fig.false_sad_looking += false
    return fig


def engine_check(tl: Timeline, params: RuleParams, hours: float, tick_s: float) -> tuple[list[float], list[float]]:
    """The first ``hours`` of one timeline through the real :class:`areya.alerts.engine.AlertEngine` (temporary
    migrated SQLite, SQL window, injected clock) and through :func:`replay` (no manual resolves): the alert open
    times of both, which must be equal."""
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
    return [
        setting.name,
        measure_name(p.measure),
        f"{p.window_s // 60} min",
        f"{p.open_share:.2f} / {p.close_share:.2f}",
        f"{p.cooldown_s // 60} min +{p.reopen_margin:.2f}" if p.cooldown_s else "none",
        f"{sens:.0%} ({fig.long_detected}/{fig.long_total})",
        f"{short:.0%}",
        f"{fa_typ:.2f}",
        f"{fa_sad:.2f}" if sad_days else "-",
        f"{med:.1f}",
        f"{p90:.1f}",
        f"{per_ep:.2f}",
        "yes" if ok else "no",
    ]


HEADER = [
    "setting",
    "score",
    "window",
    "open / close",
    "cool-down",
    "sensitivity >= 10 min",
    "5-10 min",
    "false / patient-day",
    "false / day, sad-looking",
    "median min to alert",
    "p90 min",
    "alerts / episode",
    "meets targets",
]


def settings_grid(base: RuleParams, quick: bool) -> list[Setting]:
    """Candidate settings: both scores, a few windows and open thresholds (close = open - 0.08 / 0.10)."""
    grid: list[Setting] = []
    prob = ((240, (0.46, 0.50)), (300, (0.44, 0.46, 0.48, 0.50, 0.52, 0.54)), (420, (0.46, 0.50)))
    labels = ((300, (0.30, 0.35)), (600, (0.30, 0.35)))
    if quick:
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


def main() -> None:
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
    ap.add_argument("--through-ward", action="store_true",
                    help="classify each face as the worker sees it: pasted into a generated ward scene, found by "
                    "the configured detector, cropped by the worker's rule (bench/ward_path.py)")
    ap.add_argument("--quick", action="store_true", help="fewer settings")
    ap.add_argument(
        "--engine-check-hours",
        type=float,
        default=0.0,
        help="also run this many hours of one sad-episode patient through the real AlertEngine on SQLite "
        "and check it opens the same alerts as the replay (shipped defaults, no manual resolves)",
    )
    args = ap.parse_args()
    lo_hi = tuple(float(x) * 60 for x in args.resolve_after_min.split(","))
    resolve_after = (lo_hi[0], lo_hi[-1])

    from areya.config import Settings

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    if args.faces == "validation":
        faces = validation_faces(args.fer_root.resolve(), args.model, args.faces_per_class, rng)
    else:
        faces = publictest_faces(args.data.resolve(), args.faces_per_class, rng)
    if args.through_ward:
        bank = FaceBank.classify_through_ward(faces, args.model, np.random.default_rng([args.seed, 99]))
    else:
        bank = FaceBank.classify(faces, args.model)
    classified = time.perf_counter() - started
    sad_days = int(round(args.patient_days * args.sad_looking))
    timelines = [
        make_timeline(rng, bank, sad_looking=i < sad_days, dwell_s=args.dwell_s, purity=args.purity)
        for i in range(args.patient_days)
    ]
    shipped = RuleParams.from_settings(Settings())
    grid = [Setting("shipped defaults", shipped), Setting("shipped, no cool-down", replace(shipped, cooldown_s=0))]
    grid += settings_grid(shipped, args.quick)
    rows = []
    for setting in grid:
        outcomes = [
            replay(tl, setting.params, args.tick_s, np.random.default_rng([args.seed, i]), resolve_after)
            for i, tl in enumerate(timelines)
        ]
        rows.append(row(setting, score(timelines, outcomes, setting.params.window_s), args.patient_days, sad_days))
    n_obs = sum(len(tl.times) for tl in timelines)
    episodes = sum(len(tl.episodes) for tl in timelines)
    print(
        f"model {bank.model_version}; faces: {args.faces}; seed {args.seed}; "
        f"{args.patient_days} patient-days ({sad_days} sad-looking), "
        f"{episodes} episodes, {n_obs} observations; faces classified once: "
        f"{', '.join(f'{k} {len(v)}' for k, v in bank.probs.items())} ({classified:.0f} s); "
        f"dwell {args.dwell_s:g} s, purity {args.purity:g}, manual resolve after {args.resolve_after_min} min; "
        f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs"
    )
    if args.engine_check_hours > 0:
        sql_opens, replay_opens = engine_check(timelines[-1], shipped, args.engine_check_hours, args.tick_s)
        same = "same" if sql_opens == replay_opens else "DIFFERENT"
        print(
            f"engine check ({args.engine_check_hours:g} h, shipped defaults): AlertEngine on SQLite opened alerts at "
            f"{[round(x) for x in sql_opens]} s, the replay at {[round(x) for x in replay_opens]} s: {same}"
        )
    print(f"targets: {TARGETS}\n")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
