"""The night ward end to end: lit and night ward cameras played through the real services, beds that must alert
and beds that must not, and the alerts the real scheduler opens.

What runs: an embedded Redis (the one ``areya`` services share under their data folder), a migrated SQLite
database, and the real programs as separate processes: ``areya ingest --until-end`` reading one video file per
camera at its own frame rate, ``areya worker`` (the configured detector and emotion model) and ``areya scheduler``
(the alert rule as configured at run time: this bench sets no rule but the window, the minimum evidence and the
tick, below).  The bench registers the ward (a bed, a patient and a bed zone per bed of each camera), renders the
videos, starts the services, waits for the videos to end and the worker to catch up, stops everything and reads
the observations and alerts the services wrote.

Scenes (``bench/detection_scenes.py``, as ``bench_night_ward`` draws them): a 1280x720 ward of six beds (3 x 2),
one FER-2013 PublicTest face per pillow (feathered in with its own border ring, skin-tinted, 64-112 px), only faces
BlazeFace or Haar finds upright and alone at 120 px (``bench_night_ward.detectable``).  Each bed shows a face for
``--hold`` seconds (3 by default: a patient's frames, not a new face every frame), then another face of the class
the bed's truth says, of another size, place and roll; between frames the head moves a pixel or two and the light
and the noise are drawn again, and every frame goes through JPEG at quality 50-90 before the video (MJPG) is
written.  Two conditions, ``--cameras`` cameras each:

* ``lit``: ward light, faces rolled at most 10 degrees;
* ``night``: the frame at 35-60 % brightness with rolling-shutter flicker bands and sensor noise
  (``bench_night_ward.light(..., "dim")``), faces lying at any roll up to 90 degrees either way.

Beds: on every camera two beds must alert (one sad, one angry patient: relaxed for ``--onset`` seconds, then sad or
angry until the end, longer than twice the window) and four must not (three neutral, one happy, all along), in a
seeded order.  The scenario's truth, not the classifier, says which beds must alert.  Per bed: the faces shown,
the frames in which the worker found the bed's face (an observation of its patient), the observations stored, how
many the alert rule sets aside for their face quality (below ``min_face_quality`` as configured), the mean
negative probability (P(angry) + P(sad)) of the readings kept, in the calm and the negative part, and when an
alert opened.  In total per condition: false alerts (a calm bed alerted), early alerts (a bed that must alert
alerted while its patient was still calm: a false alert too), missed alerts (a bed that must alert never did),
and the time from the onset to the alert.

Time: the services run in real time (a video file plays at its frame rate; captures are stamped with the wall
clock; the scheduler ticks on it).  To keep a run within minutes, the alert window is short: ``--window`` seconds
(60; ``negative_window_s``), ``--min-obs`` observations in it (12; ``negative_min_obs``: the default's 60 in 300 s,
scaled to the window) and a tick every 5 s, set for the run's services through their environment.  Everything
else in the rule (thresholds, baseline, face-quality threshold) is the configured default; the baseline needs
hours of a patient's observations and plays no part in a run of minutes.  At 1 frame/s a 60 s window holds about
60 frames of 20 faces: fewer distinct faces than a 300 s window at 2 frames/s, so a calm bed's score scatters
more than it would in the ward.

    nice -n 5 python -m bench.bench_night_ward_e2e                 # 4 + 4 cameras, 48 beds, 240 s: ~10 min
    nice -n 5 python -m bench.bench_night_ward_e2e --seed 20261210  # another seed
    nice -n 5 python -m bench.bench_night_ward_e2e --night-detector-options zone_window_px=192 --min-face-quality 0.5
    nice -n 5 python -m bench.bench_night_ward_e2e --quick         # 1 + 1 cameras, 60 s: a smoke run

``--videos DIR`` renders the videos into DIR once and plays them again in later runs of the same seed and timing
(rendering takes minutes).  ``--min-face-quality`` and ``--night-detector-options`` (the night cameras' own
detector options, as a camera's ``detector_options``) are the levers measured in
docs/experiments/2026-12-night-ward.md.  ``--keep`` keeps the run's folder (videos, database, service logs).
Without ``../shared/data/fer2013/publictest`` it says so and exits 0.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import detection_scenes as ds
from bench.bench_night_ward import CLASSES, FER_DIR, FRAME, GRID, detectable, ferplus_labels, keyed_faces, light
from bench.bench_scaleout import Probe, Services, log, wait_for

SEED = 20261209  # the faces, scenes and bed orders of the recorded runs
WARD = "Night ward e2e"
NEGATIVE = ("sad", "angry")
CALM = ("neutral", "happy")
ROLES = ("sad", "angry", "neutral", "neutral", "neutral", "happy")  # per camera of six beds, shuffled per camera


@dataclass(frozen=True)
class Condition:
    name: str
    light: str  # bench_night_ward.light kind
    roll: float  # faces rolled up to this many degrees either way


CONDITIONS = (Condition("lit", "lit", 10.0), Condition("night", "dim", 90.0))


@dataclass(frozen=True)
class BedTruth:
    """What bed ``bed`` of camera ``camera`` shows: ``role`` (a FER class) from ``onset`` s, neutral before (onset 0:
    ``role`` all along).  A bed must alert when its role is negative."""

    camera: str
    condition: str
    bed: int
    role: str
    onset: float

    @property
    def must_alert(self) -> bool:
        return self.role in NEGATIVE

    def emotion_at(self, t: float) -> str:
        return self.role if t >= self.onset else "neutral"

    def describe(self) -> str:
        return f"{self.role} from {self.onset:g} s" if self.onset > 0 else f"{self.role} all along"


def bed_truths(camera: str, condition: str, rng: np.random.Generator, onset: float) -> list[BedTruth]:
    """The six beds of a camera: :data:`ROLES` in a seeded order; the negative ones turn at ``onset``."""
    roles = [ROLES[i] for i in rng.permutation(len(ROLES))]
    return [BedTruth(camera, condition, b, r, onset if r in NEGATIVE else 0.0) for b, r in enumerate(roles)]


# --------------------------------------------------------------------------- the videos


@dataclass
class Hold:
    """One face held on a pillow: its patch rolled once (``detection_scenes.face_patch``, ``rotate_patch``), pasted
    at ``centre`` +- a little sway each frame (as ``detection_scenes.paste_face`` pastes it)."""

    patch: np.ndarray
    mask: np.ndarray
    offset: tuple[float, float]  # the face centre's place in the rolled patch
    centre: tuple[float, float]

    def paste(self, frame: np.ndarray, sway: tuple[float, float]) -> None:
        x = round(self.centre[0] + sway[0] - self.offset[0])
        y = round(self.centre[1] + sway[1] - self.offset[1])
        ds.paste(frame, self.patch, self.mask, x, y)


def _hold(rng: np.random.Generator, pool: Sequence[np.ndarray], bed: ds.Bed, condition: Condition) -> Hold:
    size = int(rng.integers(64, 113))
    roll = float(rng.uniform(-condition.roll, condition.roll))
    cx = bed.x + bed.w * rng.uniform(0.35, 0.65)
    cy = max(bed.y + bed.h * rng.uniform(0.17, 0.27), bed.y + 0.6 * size)
    face = pool[int(rng.integers(len(pool)))]
    patch, mask = ds.face_patch(face, size, ds.skin_tint(rng))
    patch, mask, m = ds.rotate_patch(patch, mask, roll)
    fcx, fcy = ds.face_centre_in_patch(ds.face_patch_side(size))
    offset = (m[0, 0] * fcx + m[0, 1] * fcy + m[0, 2], m[1, 0] * fcx + m[1, 1] * fcy + m[1, 2])
    return Hold(patch, mask, offset, (cx, cy))


def render_camera(
    path: Path,
    truths: Sequence[BedTruth],
    pools: dict[str, list[np.ndarray]],
    condition: Condition,
    rng: np.random.Generator,
    *,
    fps: float,
    duration: float,
    hold_s: float,
) -> list[tuple[float, float, float, float]]:
    """Write the camera's video (MJPG, ``fps``) of ``duration`` s; returns its bed zones (normalized)."""
    w, h = FRAME
    background, beds = ds.draw_ward(rng, w, h, grid=GRID)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    holds: dict[int, tuple[tuple[int, str], Hold]] = {}  # bed -> the face it holds now
    try:
        for k in range(round(duration * fps)):
            t = k / fps
            frame = background.copy()
            for truth, bed in zip(truths, beds, strict=True):
                key = (int(t // hold_s), truth.emotion_at(t))  # a new face at the onset too
                if truth.bed not in holds or holds[truth.bed][0] != key:
                    holds[truth.bed] = (key, _hold(rng, pools[key[1]], bed, condition))
                holds[truth.bed][1].paste(frame, (rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.0)))
            frame = light(frame, rng, condition.light)
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 91))])
            writer.write(cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else frame)
    finally:
        writer.release()
    return [bed.zone(w, h) for bed in beds]


def render_job(job: tuple[Any, ...]) -> tuple[str, Path, list[Any], list[BedTruth]]:
    """Camera ``i`` of ``condition``: its beds (seeded by seed, condition and camera) and its video, rendered."""
    root, condition, i, pools, seed, onset, fps, seconds, hold = job
    name = f"{condition.name}-{i + 1}"
    rng = np.random.default_rng([seed, CONDITIONS.index(condition), i])
    beds = bed_truths(name, condition.name, rng, onset)
    video = root / f"{name}.avi"
    zones = render_camera(video, beds, pools, condition, rng, fps=fps, duration=seconds, hold_s=hold)
    return name, video, zones, beds


def face_pools(per_class: int, seed: int, labels: str = "fer2013") -> dict[str, list[np.ndarray]]:
    """``per_class`` PublicTest faces per class that BlazeFace or Haar finds upright alone at 120 px; a face's class
    is its FER-2013 folder, or with ``labels="ferplus"`` the majority of its ten FER+ annotators (faces without one
    among the four classes left out): a calm bed then shows faces most people read as calm."""
    if labels == "ferplus":
        pool, folders, keys = keyed_faces(math.ceil(per_class * 2.5) + 2, seed)
        plus = ferplus_labels(keys)
        pool, names = [f for f, c in zip(pool, plus, strict=True) if c], [c for c in plus if c]
    else:
        pool, names, _ = keyed_faces(math.ceil(per_class * 1.6) + 2, seed)
    faces, kept_labels, _ = detectable(pool, names, per_class, seed)
    out: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}
    for face, label in zip(faces, kept_labels, strict=True):
        out[label].append(face)
    empty = [c for c, v in out.items() if not v]
    if empty:
        raise SystemExit(f"no detectable PublicTest faces of class {empty}")
    return out


# --------------------------------------------------------------------------- the services


def service_env(data_dir: Path, rule: dict[str, str]) -> dict[str, str]:
    """The services' environment: this run's data folder and database, ``rule``'s settings (only those the
    configuration knows: a renamed setting is left out and said), nothing else of the caller's AREYA_*."""
    from areya.config import Settings, env_name

    env = {k: v for k, v in os.environ.items() if not k.startswith("AREYA_") or k.startswith("AREYA_TEST_")}
    env.update(
        AREYA_DATA_DIR=str(data_dir),
        AREYA_DATABASE_URL=f"sqlite:///{data_dir / 'areya.db'}",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
    )
    known = set(getattr(Settings, "__dataclass_fields__", {})) or set(getattr(Settings, "model_fields", {}))
    for key, value in rule.items():
        if key in known:
            env[env_name(key)] = value
        else:
            log(f"setting {key} is not in this configuration: left out")
    return env


def backlog(client: Any, settings: Any) -> int:
    """Frames in the stream the workers have not processed yet (undelivered and pending: ``bench_scaleout``'s
    probe, which also counts them on a Redis without XINFO's lag)."""
    return Probe(client, settings).sample().backlog


# --------------------------------------------------------------------------- the figures


@dataclass
class BedResult:
    truth: BedTruth
    frames: int  # frames in the camera's video (every frame shows the bed's face)
    published: int  # frames of them the ingestor published (it skips frames when it falls behind the video's pace)
    found: int = 0  # frames with at least one observation of the bed's patient
    observations: int = 0
    set_aside: int = 0
    neg_calm: list[float] = field(default_factory=list)  # P(neg) of kept readings while calm
    neg_negative: list[float] = field(default_factory=list)  # ... while sad or angry
    alerts: list[float] = field(default_factory=list)  # seconds from the camera's start each alert opened at

    @property
    def first_alert(self) -> float | None:
        return min(self.alerts) if self.alerts else None

    @property
    def verdict(self) -> str:
        first = self.first_alert
        if not self.truth.must_alert:
            return "ok" if first is None else "FALSE ALERT"
        if first is not None and first < self.truth.onset:
            return "EARLY ALERT"
        return "ok" if first is not None else "MISSED"

    @property
    def delay(self) -> float | None:
        """Seconds from the onset to the alert, for a bed that must alert and did (after the onset)."""
        first = self.first_alert
        if not self.truth.must_alert or first is None or first < self.truth.onset:
            return None
        return first - self.truth.onset


def score_beds(
    results: Sequence[BedResult],
    observations: Sequence[tuple[Any, ...]],
    alerts: Sequence[tuple[int, float]],
    patient_of: dict[int, int],
    starts: dict[str, float],
    fps: float,
    min_quality: float,
) -> None:
    """Fill ``results`` (index i = patient ``patient_of`` key's bed) from the services' rows: observations as
    (patient id, captured epoch s, P(neg), quality), negative-emotion alerts as (patient id, opened epoch s);
    ``starts``: each camera's first frame's capture time."""
    by_patient = {pid: results[i] for pid, i in patient_of.items()}
    frames_seen: dict[int, set[int]] = {pid: set() for pid in patient_of}
    for pid, at, neg, quality, *_ in observations:
        r = by_patient.get(pid)
        if r is None:
            continue
        t = at - starts[r.truth.camera]
        r.observations += 1
        frames_seen[pid].add(round(t * fps))
        if quality is not None and quality < min_quality:
            r.set_aside += 1
            continue
        (r.neg_negative if r.truth.emotion_at(t) in NEGATIVE else r.neg_calm).append(neg)
    for pid, seen in frames_seen.items():
        by_patient[pid].found = len(seen)
    for pid, at in alerts:
        r = by_patient.get(pid)
        if r is not None:
            r.alerts.append(at - starts[r.truth.camera])


def _mean(values: Sequence[float]) -> str:
    return f"{100 * statistics.fmean(values):.1f}" if values else "-"


def print_beds(results: Sequence[BedResult]) -> None:
    print(
        "| condition | camera | bed | truth | frames (published) | found % of published | observations | set aside % "
        "| P(neg) kept, calm % | P(neg) kept, sad/angry % | alert opened (s) | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        t = r.truth
        opened = ", ".join(f"{a:.0f}" for a in sorted(r.alerts)) or "-"
        print(
            f"| {t.condition} | {t.camera} | {t.bed + 1} | {t.describe()} | {r.frames} ({r.published}) | "
            f"{100 * r.found / max(r.published, 1):.1f} | {r.observations} | "
            f"{100 * r.set_aside / max(r.observations, 1):.1f} | {_mean(r.neg_calm)} | {_mean(r.neg_negative)} | "
            f"{opened} | {r.verdict} |"
        )


def summary(results: Sequence[BedResult]) -> dict[str, Any]:
    calm = [r for r in results if not r.truth.must_alert]
    negative = [r for r in results if r.truth.must_alert]
    delays = [d for r in negative if (d := r.delay) is not None]
    neutral = [v for r in calm if r.truth.role == "neutral" for v in r.neg_calm]
    return {
        "beds": len(results),
        "calm": len(calm),
        "negative": len(negative),
        "false": sum(r.verdict == "FALSE ALERT" for r in calm),
        "false_alerts": sum(len(r.alerts) for r in calm),
        "early": sum(r.verdict == "EARLY ALERT" for r in negative),
        "missed": sum(r.verdict == "MISSED" for r in negative),
        "delays": delays,
        "published": sum(r.published for r in results) / max(sum(r.frames for r in results), 1),
        "found": sum(r.found for r in results) / max(sum(r.published for r in results), 1),
        "set_aside": sum(r.set_aside for r in results) / max(sum(r.observations for r in results), 1),
        "neutral_neg": statistics.fmean(neutral) if neutral else float("nan"),
        "negative_neg": statistics.fmean([v for r in negative for v in r.neg_negative] or [float("nan")]),
    }


def print_summary(results: Sequence[BedResult], window: float, tick: float) -> None:
    print(
        "| condition | beds (calm + must alert) | frames published % | faces found % | set aside % "
        "| neutral beds: mean P(neg) kept % "
        "| sad/angry: mean P(neg) kept % | false alerts: calm beds alerted (alerts) | early alerts | missed alerts "
        f"| onset to alert, median / max s | alerted within the window ({window:g} s) + 2 ticks |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cond in [c.name for c in CONDITIONS] + ["all"]:
        sel = [r for r in results if cond in ("all", r.truth.condition)]
        if not sel:
            continue
        s = summary(sel)
        delays = s["delays"]
        timing = f"{statistics.median(delays):.0f} / {max(delays):.0f}" if delays else "-"
        print(
            f"| {cond} | {s['beds']} ({s['calm']} + {s['negative']}) | {100 * s['published']:.1f} | "
            f"{100 * s['found']:.1f} | "
            f"{100 * s['set_aside']:.1f} | {100 * s['neutral_neg']:.1f} | {100 * s['negative_neg']:.1f} | "
            f"{s['false']} ({s['false_alerts']}) | {s['early']} | {s['missed']} | {timing} | "
            f"{sum(d <= window + 2 * tick for d in delays)} of {s['negative']} |"
        )


# --------------------------------------------------------------------------- the run


def setup_ward(settings: Any, cameras: Sequence[tuple[str, Path, float, str, list[Any]]]) -> dict[int, int]:
    """Ward, cameras (video files), a bed, patient and zone per bed; patient id -> index in the bed order."""
    from areya import admin
    from areya.admin.cameras import add_camera
    from areya.admin.wards import add_bed, add_ward
    from areya.db.engine import create_db_engine, create_session_factory, session_scope
    from areya.db.models import Patient

    engine = create_db_engine(settings)
    patient_of: dict[int, int] = {}
    try:
        with session_scope(create_session_factory(engine)) as session:
            add_ward(session, WARD)
            index = 0
            for name, video, fps, options, zones in cameras:
                add_camera(
                    session,
                    WARD,
                    name,
                    f"file://{video}",
                    fps,
                    detector_options=options or None,
                    detector=settings.detector,
                )
                for b, zone in enumerate(zones):
                    label = f"{name}-{b + 1}"
                    add_bed(session, WARD, label)
                    mrn = f"NW{index:03d}"
                    admin.admit_patient(session, mrn, f"Patient {label}", f"{WARD}/{label}")
                    admin.set_zone(session, f"{WARD}/{name}", f"{WARD}/{label}", *zone)
                    session.flush()
                    pid = session.query(Patient.id).filter(Patient.mrn == mrn).scalar()
                    patient_of[int(pid)] = index
                    index += 1
    finally:
        engine.dispose()
    return patient_of


def published_frames(ingest_log: str) -> dict[str, int]:
    """Camera name -> frames the ingestor published from its video (its reader's last line)."""
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(
            r"INFO areya\.camera\.reader: (\S+): end of video file .* \((\d+) frame\(s\) published\)", ingest_log
        )
    }


def read_rows(settings: Any) -> tuple[list[Any], list[Any], dict[str, float], list[str]]:
    """Observations (patient, captured s, P(neg), quality, seconds from capture to stored), negative-emotion alerts
    (patient, opened s), each camera's first capture time (its first observation: every frame shows six faces), the
    models that read them."""
    from sqlalchemy import func, select

    from areya.db.engine import create_db_engine
    from areya.db.models import Alert, Camera, Observation

    def epoch(d: datetime) -> float:
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()

    engine = create_db_engine(settings)
    try:
        with engine.connect() as conn:
            obs = [
                (pid, epoch(at), float(pa + ps), q, epoch(stored) - epoch(at))
                for pid, at, pa, ps, q, stored in conn.execute(
                    select(
                        Observation.patient_id,
                        Observation.captured_at,
                        Observation.p_angry,
                        Observation.p_sad,
                        Observation.quality,
                        Observation.created_at,
                    )
                )
            ]
            alerts = [
                (pid, epoch(at))
                for pid, at in conn.execute(
                    select(Alert.patient_id, Alert.opened_at).where(Alert.kind == "negative_emotion")
                )
            ]
            starts = {
                name: epoch(first)
                for name, first in conn.execute(
                    select(Camera.name, func.min(Observation.captured_at))
                    .join(Observation, Observation.camera_id == Camera.id)
                    .group_by(Camera.name)
                )
            }
            models = list(conn.scalars(select(Observation.model_version).distinct()))
    finally:
        engine.dispose()
    return obs, alerts, starts, models


def videos(args: argparse.Namespace, conditions: Sequence[Condition], folder: Path) -> list[Any]:
    """Every camera's (name, video, zones, beds): rendered into ``folder``, or the ones already there when its
    ``videos.json`` says they were rendered with the same seed, faces and timing (``--videos``)."""
    key = {k: getattr(args, k) for k in ("seed", "faces", "seconds", "fps", "hold", "onset", "labels")}
    names = [(cond, i, f"{cond.name}-{i + 1}") for cond in conditions for i in range(args.cameras)]
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "videos.json"
    known = json.loads(manifest.read_text()) if manifest.is_file() else {}
    if known.get("key") != key:
        known = {"key": key, "zones": {}}
    wanted = [(c, i, n) for c, i, n in names if n not in known["zones"] or not (folder / f"{n}.avi").is_file()]
    if wanted:
        t0 = time.perf_counter()
        pools = face_pools(args.faces, args.seed, args.labels)
        jobs = [(folder, c, i, pools, args.seed, args.onset, args.fps, args.seconds, args.hold) for c, i, _ in wanted]
        with concurrent.futures.ProcessPoolExecutor(
            max(1, args.render_jobs), mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            for name, _, zones, _ in pool.map(render_job, jobs):
                known["zones"][name] = zones
        manifest.write_text(json.dumps(known))
        log(
            f"rendered {len(wanted)} video(s) from {sum(len(v) for v in pools.values())} faces ({args.faces} per "
            f"class) in {time.perf_counter() - t0:.0f} s"
        )
    out = []
    for cond, i, name in names:
        beds = bed_truths(name, cond.name, np.random.default_rng([args.seed, CONDITIONS.index(cond), i]), args.onset)
        out.append((name, folder / f"{name}.avi", [tuple(z) for z in known["zones"][name]], beds))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=4, help="cameras per condition (six beds each)")
    ap.add_argument("--conditions", default="lit,night", help="lit, night or both")
    ap.add_argument("--seconds", type=float, default=240.0, help="video length")
    ap.add_argument("--fps", type=float, default=1.0, help="frames per second of each camera")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds each face is held")
    ap.add_argument("--onset", type=float, default=60.0, help="when the beds that must alert turn sad or angry (s)")
    ap.add_argument("--window", type=int, default=60, help="negative_window_s for the run's services")
    ap.add_argument("--min-obs", type=int, default=12, help="negative_min_obs for the run's services")
    ap.add_argument("--tick", type=float, default=5.0, help="scheduler_tick_s for the run's services")
    ap.add_argument("--min-face-quality", type=float, default=None, help="min_face_quality (default: configured)")
    ap.add_argument(
        "--rule-settings",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="more settings for the run's services (e.g. negative_min_span=0.8), after the ones above",
    )
    ap.add_argument("--night-detector-options", default="", help="the night cameras' own detector options")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--render-jobs", type=int, default=2, help="processes rendering the videos")
    ap.add_argument(
        "--videos", type=Path, default=None, help="keep the rendered videos here and reuse them in later runs"
    )
    ap.add_argument("--faces", type=int, default=40, help="PublicTest faces per class to draw from")
    ap.add_argument(
        "--labels",
        choices=("fer2013", "ferplus"),
        default="fer2013",
        help="a face's class (what a bed must or must not alert on): its FER-2013 folder, or the majority of its "
        "ten FER+ annotators",
    )
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (videos, database, logs)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 camera per condition, 60 s, window 20 s")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.seconds, args.onset, args.window, args.min_obs, args.faces = 1, 60.0, 15.0, 20, 5, 8
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not FER_DIR.is_dir():
        print(f"skipped: FER-2013 PublicTest not found at {FER_DIR}")
        return 0
    conditions = [c for c in CONDITIONS if c.name in {x.strip() for x in args.conditions.split(",")}]
    if not conditions:
        print(f"--conditions: choose from {', '.join(c.name for c in CONDITIONS)}", file=sys.stderr)
        return 2
    if args.seconds - args.onset < 2 * args.window:
        print("--seconds must leave the negative beds at least twice --window after --onset", file=sys.stderr)
        return 2

    t_start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="areya-night-e2e-"))
    (root / "logs").mkdir()
    rule = {
        "negative_window_s": str(args.window),
        "negative_min_obs": str(args.min_obs),
        "scheduler_tick_s": str(args.tick),
    }
    if args.min_face_quality is not None:
        rule["min_face_quality"] = str(args.min_face_quality)
    for item in args.rule_settings:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--rule-settings: expected KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        rule[key.strip()] = value.strip()
    env = service_env(root / "data", rule)
    services = Services(env, root / "logs")
    client = None
    try:
        from areya.config import load_settings

        settings = load_settings(env=env)
        min_quality = float(getattr(settings, "min_face_quality", 0.0))
        log(
            f"seed {args.seed}: {args.cameras} camera(s) per condition ({', '.join(c.name for c in conditions)}), "
            f"six beds each, {args.seconds:g} s at {args.fps:g} frame/s, faces held {args.hold:g} s, onset "
            f"{args.onset:g} s, faces classed by {args.labels}"
            + (f"; settings {' '.join(args.rule_settings)}" if args.rule_settings else "")
        )
        rendered = videos(args, conditions, args.videos or root)
        cameras, truths = [], []
        for name, video, zones, beds in rendered:
            options = args.night_detector_options if name.startswith("night") else ""
            cameras.append((name, video, args.fps, options, zones))
            truths += beds

        services.run("db", "upgrade")
        patient_of = setup_ward(settings, cameras)
        from areya.comms.redis_server import connect

        client = connect(settings)
        for k in range(args.workers):
            services.start(f"worker-{k + 1}", "worker")
        services.start("scheduler", "scheduler")
        wait_for(
            "the worker(s) to warm up",
            lambda: all("model " in services.log_text(f"worker-{k + 1}") for k in range(args.workers)),
            300,
        )
        log(
            f"services up; rule from this run's settings: window {settings.negative_window_s} s, "
            f"min obs {settings.negative_min_obs}, tick {settings.scheduler_tick_s:g} s, "
            f"min face quality {min_quality:g}"
        )
        ingest = services.start("ingest", "ingest", "--until-end")
        worst = 0
        deadline = time.monotonic() + args.seconds + 120
        while ingest.poll() is None and time.monotonic() < deadline:
            time.sleep(2.0)
            worst = max(worst, backlog(client, settings))
        if ingest.poll() is None:
            raise TimeoutError("the ingestor did not finish its videos in time")
        if ingest.returncode != 0:
            raise RuntimeError(f"areya ingest failed ({ingest.returncode}): {services.log_text('ingest')[-2000:]}")
        log(f"videos played; worst backlog {worst} frames; waiting for the worker to catch up")
        wait_for("the worker to catch up", lambda: backlog(client, settings) == 0, 600, 1.0)
        time.sleep(2 * args.tick + 1)  # the scheduler's last ticks on the last observations
        services.stop_all()
        obs, alerts, starts, models = read_rows(settings)

        published = published_frames(services.log_text("ingest"))
        frames = round(args.seconds * args.fps)
        results = [BedResult(t, frames, published.get(t.camera, 0)) for t in truths]
        score_beds(results, obs, alerts, patient_of, starts, args.fps, min_quality)
        print()
        print(
            f"model {', '.join(models) or '-'}; {args.workers} worker(s); rule at run time: window "
            f"{settings.negative_window_s} s, "
            f"min obs {settings.negative_min_obs}, min face quality {min_quality:g}, night cameras' detector "
            f"options: {args.night_detector_options or '(none)'}; worst stream backlog {worst} frames"
        )
        delays = np.array([o[4] for o in obs]) if obs else np.zeros(1)
        print(
            "capture to stored, s: median {:.1f}, 90th percentile {:.1f}, max {:.1f} (a tick's window holds only "
            "readings stored by then: a window of {} s holds about {:.0f} s of readings at the median)".format(
                *np.percentile(delays, [50, 90, 100]), args.window, max(0.0, args.window - np.median(delays))
            )
        )
        print()
        print_beds(results)
        print()
        print_summary(results, args.window, args.tick)
        print(f"\ntook {time.perf_counter() - t_start:.0f} s")
        return 0
    finally:
        services.stop_all()
        if client is not None:
            from areya.comms.redis_server import stop_owned_servers

            stop_owned_servers()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
