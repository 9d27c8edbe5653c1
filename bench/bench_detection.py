"""Face detection recall / precision on generated ward scenes, per backend and option set; plus the real clip and
photo of ``../shared/data/video``.

Scenes (``bench/detection_scenes.py``): 1280x720 and 1920x1080 wards, 2-8 bed zones, 1-6 FER-2013 publictest faces
per frame at 32-200 px, feathered onto pillows with context, rolled up to +-90 degrees, dim / low-contrast
frames, JPEG quality 50-90.  A detection matches a face at IoU >= 0.5 (greedy, best score first).  Recall is given
by face size and by roll; precision over all detections (IoU >= 0.5), and "on face": the share of detections whose
centre lies in a face's box, whatever the box's fit (a loose box around a rolled face fails IoU but is no false
face).  A second table gives recall and precision against each face's own box (the fixed box corrected by how its
FER image frames the face, measured on the face alone: ``face_frames``, ``detection_scenes``).  Zone variants get
the scene's bed zones through
``detect_in_zones`` as the worker does.  ms/frame is wall-clock, one thread.

By default the faces are those of a seeded sample of publictest that BlazeFace or Haar finds upright and alone at
120 px (``--all-faces`` keeps every face: about a quarter of FER's faces - profiles, hands, crops - are found by
neither at any size, which would cap every recall alike).

    nice -n 10 python -m bench.bench_detection [--short] [--scenes N] [--seed S] [--only LABEL,...] [--all-faces]

``--sequences N`` measures tracking between full zone scans (the ``track`` option) instead: N short sequences
(``--seq-frames`` frames each, 10 by default) of one ward camera whose faces drift a few pixels per frame and
change slightly (roll, size, sensor noise; some faces come or go mid-sequence), each sequence a camera of its own;
recall / precision and passes per frame for the full scan on every frame against ``track=2/4/8``.  ``--short``:
at most 8 sequences.

    nice -n 19 python -m bench.bench_detection --sequences 16 [--short] [--seq-frames F] [--only LABEL,...]

``--quick`` is a smoke run of both: 40 sampled faces, 2 scenes and 2 clip frames, then 1 sequence of 3 frames
(``--quick`` used to mean what ``--short`` does now).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from areya.detectors import FaceBox, FaceDetector, available_detectors, create_detector
from areya.detectors.tracking import TRACK_PAD, ZoneTracker, detect_for_camera
from bench import detection_scenes as ds

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FER_DIR = SHARED / "fer2013" / "publictest"
CLIP = SHARED / "video" / "expressions-720x576.mp4"
PHOTO = SHARED / "video" / "two-people.jpg"
# hand-labelled once (eyebrows to chin, cheek to cheek) on the 768x512 photo
PHOTO_FACES = [FaceBox(222, 80, 84, 88), FaceBox(430, 130, 84, 86)]
IOU = 0.5
SELECT_BOX = FaceBox(120, 120, 120, 120)  # face_frames' selection: a probe's box on the 360 px canvas's centre
ROT3 = "0/90/270"


@dataclass
class Variant:
    label: str
    name: str
    opts: dict[str, Any] = field(default_factory=dict)


FRAME = {"zone_mode": "frame"}
ZONES = {"zone_mode": "zones"}
RAW_BOX = {"box_scale": 1.0, "box_shift": 0.0}  # BlazeFace's box as the network gives it (the default)
CAL_BOX = {"box_scale": 1.1, "box_shift": -0.05}  # blazeface.CALIBRATED_BOX: boxes in the bench's label convention
NO_REDETECT = {"redetect_roll": 0}  # rolled faces are not looked at again in a turned window
NO_TURNS = {"zone_turns": "none"}  # empty zones are not looked at again turned 90 / 270 degrees
SAME = {"zone_mode": "zones", "zone_detector": "same"}
VARIANTS = [
    Variant("haar", "haar", FRAME),
    Variant("haar zones", "haar", ZONES),
    Variant("blazeface", "blazeface", FRAME),
    Variant("blazeface tiles=2", "blazeface", {"tiles": 2, **FRAME}),
    Variant("blazeface-short", "blazeface-short", FRAME),
    Variant("blazeface zones (crops: full range)", "blazeface", SAME),
    Variant("blazeface zones", "blazeface", ZONES),
    Variant("blazeface zones pad=0.2", "blazeface", {"zone_pad": 0.2, **ZONES}),
    Variant("blazeface zones win=384", "blazeface", {"zone_window_px": 384, **ZONES}),
    Variant("blazeface both (default)", "blazeface", {"zone_mode": "both"}),
    Variant("blazeface both no redetect", "blazeface", {"zone_mode": "both", **NO_REDETECT}),
    Variant("blazeface both no zone turns", "blazeface", {"zone_mode": "both", **NO_TURNS}),
    Variant(
        "blazeface both zone turns 90/270/45/315", "blazeface", {"zone_mode": "both", "zone_turns": "90/270/45/315"}
    ),
    Variant("blazeface both calibrated box", "blazeface", {"zone_mode": "both", **CAL_BOX}),
    Variant(f"blazeface rot {ROT3}", "blazeface", {"rotations": ROT3, **FRAME}),
    Variant(f"blazeface zones rot {ROT3}", "blazeface", {"rotations": ROT3, **ZONES}),
    Variant("blazeface zones rot 0/45/90/270/315", "blazeface", {"rotations": "0/45/90/270/315", **ZONES}),
]
OPTIONAL_BACKENDS = ["mtcnn"]  # benchmarked when areya.detectors registers them
BOTH = {"zone_mode": "both"}
NO_RESCANS = {"rescan": 0, "rescan_lost": False}  # tracking frames leave empty zones to the next full scan
SEQ_VARIANTS = [  # the sequence mode's option sets (bench only: ``track_pad``, the tracker's window padding;
    # ``track_rescan``, the tracker's zone rescan arguments, areya.detectors.tracking.ZoneTracker)
    Variant("blazeface frame only", "blazeface", FRAME),
    Variant("both, full scan every frame (track=0)", "blazeface", {"track": 0, **BOTH}),
    Variant("both, track=2", "blazeface", {"track": 2, **BOTH}),
    Variant("both, track=4 (default)", "blazeface", {"track": 4, **BOTH}),
    Variant("both track=4 no zone rescans", "blazeface", {"track": 4, "track_rescan": NO_RESCANS, **BOTH}),
    Variant("both track=4 rescans turned", "blazeface", {"track": 4, "track_rescan": {"rescan_turns": True}, **BOTH}),
    Variant("both track=4 rescan all empty", "blazeface", {"track": 4, "track_rescan": {"rescan": None}, **BOTH}),
    Variant("both track=4 no redetect", "blazeface", {"track": 4, **BOTH, **NO_REDETECT}),
    Variant("both track=4 no zone turns", "blazeface", {"track": 4, **BOTH, **NO_TURNS}),
    Variant("both track=4 calibrated box", "blazeface", {"track": 4, **BOTH, **CAL_BOX}),
    Variant("both, track=8", "blazeface", {"track": 8, **BOTH}),
    Variant("both track=8 no zone rescans", "blazeface", {"track": 8, "track_rescan": NO_RESCANS, **BOTH}),
    Variant("both, track=4 pad=1.0", "blazeface", {"track": 4, "track_pad": 1.0, **BOTH}),
    Variant("zones, track=4", "blazeface", {"track": 4, **ZONES}),
]


@dataclass
class Tally:
    found: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    detections: int = 0
    true_pos: int = 0
    off_face: int = 0  # detections whose centre lies in no face's box: false faces, not just loose boxes
    true_pos_own: int = 0  # detections matching a face's own box (Truth.own) at IoU >= 0.5
    seconds: float = 0.0
    frames: int = 0
    views: int = 0  # detector passes (whole frame, zone windows, rotated views)

    def add(self, bucket: str, hit: bool) -> None:
        self.found[bucket][0] += int(hit)
        self.found[bucket][1] += 1

    def recall(self, bucket: str) -> str:
        hit, total = self.found.get(bucket, [0, 0])
        return f"{100.0 * hit / total:5.1f}" if total else "    -"

    @property
    def precision(self) -> float:
        return 100.0 * self.true_pos / self.detections if self.detections else 100.0

    @property
    def precision_own(self) -> float:
        return 100.0 * self.true_pos_own / self.detections if self.detections else 100.0

    @property
    def on_face(self) -> float:
        """Precision by centre: the share of detections whose centre lies on a face (any box quality)."""
        return 100.0 * (self.detections - self.off_face) / self.detections if self.detections else 100.0


def match(truth: Sequence[FaceBox], found: Sequence[FaceBox], iou: float = IOU) -> tuple[list[bool], int]:
    """Greedy matching, best score first: which truths are hit, and how many detections hit one."""
    hit = [False] * len(truth)
    true_pos = 0
    for det in sorted(found, key=lambda f: -f.score):
        best, best_iou = -1, iou
        for i, t in enumerate(truth):
            if not hit[i] and (v := det.iou(t)) >= best_iou:
                best, best_iou = i, v
        if best >= 0:
            hit[best] = True
            true_pos += 1
    return hit, true_pos


def centre_in(found: FaceBox, truth: FaceBox) -> bool:
    cx, cy = found.center()
    return truth.x <= cx < truth.x + truth.w and truth.y <= cy < truth.y + truth.h


def detect(det: FaceDetector, image: np.ndarray, zones: Sequence[Any]) -> tuple[list[FaceBox], float]:
    t0 = time.perf_counter()
    faces = det.detect_in_zones(image, zones) if zones else det.detect(image)
    return list(faces), time.perf_counter() - t0


def pick_variants(variants: list[Variant], only: str) -> list[Variant]:
    """The variants ``--only`` names: comma-separated labels, each exact or else a substring of labels; the whole
    string when it is one label exactly (some labels hold a comma)."""
    labels = {v.label for v in variants}
    wanted = [only.strip()] if only.strip() in labels else [w.strip() for w in only.split(",") if w.strip()]
    return [v for v in variants if any(w == v.label or (w not in labels and w in v.label) for w in wanted)]


def face_frames(
    faces: list[np.ndarray], probe: list[FaceDetector]
) -> tuple[list[np.ndarray], list[ds.FaceFrame | None]]:
    """The faces that one of ``probe`` finds upright and alone at 120 px on a plain pillow-grey canvas (IoU >= 0.5
    with the fixed box), and each one's own box against the fixed one (:data:`detection_scenes.FaceFrame`): per
    probe that found it, its box's side / 120 and centre offset / 120, made relative to that probe's median over
    the kept faces; averaged over the probes."""
    keep: list[np.ndarray] = []
    raw: list[list[tuple[float, float, float] | None]] = []
    for face in faces:
        patch, mask = ds.face_patch(face, 120, (0.85, 0.92, 1.05))
        canvas = np.full((360, 360, 3), 225, np.uint8)
        x0, y0 = 180 - patch.shape[1] // 2, 180 - patch.shape[0] // 2
        ds.paste(canvas, patch, mask, x0, y0)
        fcx, fcy = ds.face_centre_in_patch(patch.shape[0])
        truth = FaceBox(round(x0 + fcx - 60), round(y0 + fcy - 60), 120, 120)
        per_probe: list[tuple[float, float, float] | None] = []
        for d in probe:
            found = d.detect(canvas)
            best = max(found, key=lambda f: f.iou(truth), default=None)
            # kept as before the own boxes (IoU with the canvas's centre square): the same faces, the same scenes
            if best is None or not match([SELECT_BOX], found)[1]:
                per_probe.append(None)
                continue
            (bx, by), (tx, ty) = best.center(), truth.center()
            per_probe.append((max(best.w, best.h) / 120.0, (bx - tx) / 120.0, (by - ty) / 120.0))
        if any(f is not None for f in per_probe):
            keep.append(face)
            raw.append(per_probe)
    medians = []
    for j in range(len(probe)):
        seen = np.array([r[j] for r in raw if r[j] is not None]) if raw else np.zeros((0, 3))
        medians.append(np.median(seen, axis=0) if len(seen) else np.array([1.0, 0.0, 0.0]))
    frames: list[ds.FaceFrame | None] = []
    for per_probe in raw:
        parts = [
            (f[0] / med[0], f[1] - med[1], f[2] - med[2])
            for f, med in zip(per_probe, medians, strict=True)
            if f is not None
        ]
        mean = np.mean(np.array(parts), axis=0)
        frames.append((float(mean[0]), float(mean[1]), float(mean[2])))
    return keep, frames


def build(variant: Variant) -> FaceDetector | None:
    """The variant's detector, its backend's ``detect`` counting the views it is run on (``det.views[0]``)."""
    opts = dict(variant.opts)
    pad = opts.pop("track_pad", None)
    rescan = opts.pop("track_rescan", None)
    try:
        det = create_detector(variant.name, **opts)
    except (ValueError, RuntimeError) as exc:
        print(f"  {variant.label}: unavailable ({exc})")
        return None
    views = [0]
    for part in (det, det.crop_detector):
        if part is not None:
            _count_views(part, views)
    det.views = views  # type: ignore[attr-defined]
    if (pad is not None or rescan is not None) and det.tracker is not None:  # type: ignore[attr-defined]
        every = det.tracker.every  # type: ignore[attr-defined]
        det.tracker = ZoneTracker(every, pad=TRACK_PAD if pad is None else pad, **(rescan or {}))  # type: ignore[attr-defined]
    return det


def _count_views(det: FaceDetector, views: list[int]) -> None:
    backend: Any = det
    while "inner" in vars(backend):
        backend = backend.inner
    run = backend.detect

    def counted(frame: np.ndarray) -> list[FaceBox]:
        views[0] += 1
        return run(frame)

    backend.detect = counted


def count(tally: Tally, scene: ds.Scene, found: list[FaceBox], seconds: float) -> list[bool]:
    """Add one frame's detections to ``tally``; which of its faces were hit (against the fixed box).  When every
    face has its own box, recall and precision against those are counted too (buckets ``own ...``)."""
    truth = [t.box for t in scene.faces]
    hit, true_pos = match(truth, found)
    tally.seconds += seconds
    tally.frames += 1
    tally.detections += len(found)
    tally.true_pos += true_pos
    tally.off_face += sum(not any(centre_in(f, t) for t in truth) for f in found)
    own = [t.own for t in scene.faces]
    hit_own: list[bool] | None = None
    if all(o is not None for o in own):
        hit_own, true_pos_own = match(own, found)  # type: ignore[arg-type]
        tally.true_pos_own += true_pos_own
    for i, (t, h) in enumerate(zip(scene.faces, hit, strict=True)):
        upright48 = abs(t.roll) < 15 and t.size >= 48
        for prefix, got in (("", h), ("own ", None if hit_own is None else hit_own[i])):
            if got is None:
                continue
            tally.add(prefix + "all", got)
            tally.add(prefix + ds.size_bucket(t.size), got)
            tally.add(prefix + ds.roll_bucket(t.roll), got)
            if upright48:
                tally.add(prefix + "upright>=48", got)
            if scene.dim:
                tally.add(prefix + "dim", got)
            if scene.image.shape[1] == 1280 and scene.meta["beds"] == 4 and upright48:
                tally.add(prefix + "720p4bed", got)
        if upright48:
            # found at all: hit, or a detection centred on it (a box looser than IoU 0.5 allows)
            tally.add("upright>=48 found", h or any(centre_in(f, t.box) for f in found))
    return hit


def run_scenes(variants: list[Variant], scenes: list[ds.Scene]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for v in variants:
        det = build(v)
        if det is None:
            continue
        det.detect(scenes[0].image)  # warm-up
        det.views[0] = 0  # type: ignore[attr-defined]
        tally = Tally()
        for scene in scenes:
            zones = scene.zones if det.zone_mode != "frame" else []
            found, seconds = detect(det, scene.image, zones)
            count(tally, scene, found, seconds)
        tally.views = det.views[0]  # type: ignore[attr-defined]
        tallies[v.label] = tally
        det.close()
        print(
            f"  {v.label}: recall {tally.recall('all')} %, precision {tally.precision:5.1f} % "
            f"(centre on a face {tally.on_face:5.1f} %), "
            f"{1000 * tally.seconds / tally.frames:.1f} ms/frame",
            flush=True,
        )
    return tallies


def print_table(tallies: dict[str, Tally], cols: list[str] | None = None, own: bool = False) -> None:
    """One row per variant; ``own``: the columns and precision against each face's own box."""
    sizes = [ds.size_bucket(lo) for lo, _ in ds.SIZE_BUCKETS]
    rolls = [ds.roll_bucket(lo) for lo, _ in ds.ROLL_BUCKETS]
    cols = cols or ["all", *sizes, *rolls, "upright>=48", "dim"]
    keys = [("own " + c) if own else c for c in cols]
    head = ["variant", *[c.replace("roll ", "r") for c in cols], "prec", "on face", "passes/frame", "ms/frame"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, t in tallies.items():
        cells = [t.recall(c).strip() for c in keys]
        prec = t.precision_own if own else t.precision
        print(
            f"| {label} | " + " | ".join(cells) + f" | {prec:.1f} | {t.on_face:.1f} | "
            f"{t.views / t.frames:.1f} | {1000 * t.seconds / t.frames:.0f} |"
        )
    any_tally = next(iter(tallies.values()), None)
    if any_tally:
        counts = ", ".join(
            f"{c} {any_tally.found[k][1]}" for c, k in zip(cols, keys, strict=True) if k in any_tally.found
        )
        print(f"(faces per column: {counts})")


def run_real(variants: list[Variant], clip_frames: int) -> None:
    """The real clip (faces per frame; no truth) and the photo (two hand-labelled faces)."""
    frames: list[np.ndarray] = []
    if CLIP.is_file():
        cap = cv2.VideoCapture(str(CLIP))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or clip_frames
        step = max(1, total // clip_frames)
        i = 0
        while len(frames) < clip_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                frames.append(frame)
            i += 1
        cap.release()
    photo = cv2.imread(str(PHOTO)) if PHOTO.is_file() else None
    print(
        f"\nReal data: {CLIP.name} ({len(frames)} frames sampled evenly; no zones: whole frame), "
        f"{PHOTO.name} (2 hand-labelled faces)"
    )
    print(
        "| variant | clip frames with a face | clip faces/frame (min-max) | clip ms/frame | photo hits / detections |"
    )
    print("|---|---|---|---|---|")
    seen: set[tuple[str, str]] = set()
    for v in variants:
        frame_opts = {k: val for k, val in v.opts.items() if not k.startswith("zone_")}
        key = (v.name, repr(sorted(frame_opts.items())))
        if key in seen:  # zone variants equal their whole-frame twin here (no zones)
            continue
        seen.add(key)
        det = build(Variant(v.label, v.name, {**frame_opts, "zone_mode": "frame"}))
        if det is None:
            continue
        counts, seconds = [], 0.0
        for frame in frames:
            found, s = detect(det, frame, [])
            counts.append(len(found))
            seconds += s
        photo_cell = "-"
        if photo is not None:
            found = det.detect(photo)
            photo_cell = f"{match(PHOTO_FACES, found)[1]} / {len(found)}"
        label = " ".join([v.name, *(f"{k}={val}" for k, val in frame_opts.items())])
        if counts:
            with_face = sum(c > 0 for c in counts)
            print(
                f"| {label} | {with_face}/{len(counts)} | {np.mean(counts):.2f} ({min(counts)}-{max(counts)}) | "
                f"{1000 * seconds / len(counts):.0f} | {photo_cell} |"
            )
        else:
            print(f"| {label} | - | - | - | {photo_cell} |")
        det.close()


# ------------------------------------------------------------------------------------------------ sequences
@dataclass
class Mover:
    """A face of a sequence: where it starts, how it drifts, the frames it is there."""

    face48: np.ndarray
    size: int
    roll: float
    tint: tuple[float, float, float]
    cx: float
    cy: float
    vx: float  # pixels per frame
    vy: float
    start: int  # first frame it is there
    end: int  # first frame it is gone
    bed: int


DRIFT_PX = 2.5  # a face drifts up to this many pixels per frame in x and y (plus JITTER_PX of noise)
JITTER_PX = 1.0
ROLL_JITTER = 1.5  # degrees of roll noise per frame
SIZE_JITTER = 0.03  # share of the face size it changes by per frame, at most
COME_GO = 0.15  # share of faces that come mid-sequence, and of those that go


def make_sequence(rng: np.random.Generator, faces: list[np.ndarray], frames: int) -> list[ds.Scene]:
    """``frames`` frames of one generated ward camera (as :func:`detection_scenes.make_scene`: 720p or 1080p,
    2-8 beds, 1-6 faces, rolls, dim light, JPEG) whose faces drift a few pixels per frame, their roll and size
    jittering; some come or go mid-sequence.  Each frame's ``meta["new"]`` / ``meta["steady"]`` say which of its
    faces came mid-sequence / are there in every frame."""
    w, h = ds.FRAME_SIZES[int(rng.random() < 0.35)]
    background, beds = ds.draw_ward(rng, w, h)
    wanted = int(rng.integers(1, 7))
    movers: list[Mover] = []
    taken: list[FaceBox] = []
    per_bed: dict[int, int] = {}
    for _ in range(wanted * 3):
        if len(movers) == wanted:
            break
        b = int(rng.integers(len(beds)))
        bed = beds[b]
        limit = min(200, round(min(bed.w, bed.h) * 0.7))
        if per_bed.get(b, 0) >= 2 or limit < 32:
            continue
        size = round(math.exp(rng.uniform(math.log(32), math.log(limit + 1))))
        centre = ds._place(rng, bed, size, taken)
        if centre is None:
            continue
        tint = (rng.uniform(0.75, 0.9), rng.uniform(0.85, 0.97), rng.uniform(1.0, 1.12))
        roll = float(rng.uniform(-10, 10) if rng.random() < 0.5 else rng.uniform(-90, 90))
        vx, vy = rng.uniform(-DRIFT_PX, DRIFT_PX, 2)
        start, end, r = 0, frames, rng.random()
        if r < COME_GO and frames > 1:
            start = int(rng.integers(1, frames))
        elif r < 2 * COME_GO and frames > 1:
            end = int(rng.integers(1, frames))
        movers.append(
            Mover(
                faces[int(rng.integers(len(faces)))],
                size,
                roll,
                tint,
                float(centre[0]),
                float(centre[1]),
                float(vx),
                float(vy),
                start,
                end,
                b,
            )
        )
        taken.append(FaceBox(round(centre[0] - size / 2), round(centre[1] - size / 2), size, size))
        per_bed[b] = per_bed.get(b, 0) + 1
    dim = bool(rng.random() < 0.35)
    contrast, gain = rng.uniform(0.4, 0.75), (rng.uniform(0.3, 0.6) if dim else rng.uniform(0.85, 1.1))
    noise = rng.uniform(2, 5) if dim else 1.5
    quality = int(rng.integers(50, 91))
    zones = [bed.zone(w, h) for bed in beds]
    out = []
    for k in range(frames):
        frame = background.copy()
        truths, new, steady = [], [], []
        for m in movers:
            if not m.start <= k < m.end:
                continue
            jx, jy = rng.normal(0, JITTER_PX, 2)
            cx, cy = m.cx + m.vx * k + jx, m.cy + m.vy * k + jy
            size = max(32, round(m.size * (1 + rng.uniform(-SIZE_JITTER, SIZE_JITTER))))
            roll = m.roll + float(rng.normal(0, ROLL_JITTER))
            patch, mask = ds.face_patch(m.face48, size, m.tint)
            patch, mask, mat = ds.rotate_patch(patch, mask, roll)
            fcx, fcy = ds.face_centre_in_patch(ds.face_patch_side(size))
            pcx = mat[0, 0] * fcx + mat[0, 1] * fcy + mat[0, 2]
            pcy = mat[1, 0] * fcx + mat[1, 1] * fcy + mat[1, 2]
            ds.paste(frame, patch, mask, round(cx - pcx), round(cy - pcy))
            truths.append(ds.Truth(FaceBox(round(cx - size / 2), round(cy - size / 2), size, size), size, roll, m.bed))
            new.append(m.start > 0)
            steady.append(m.start == 0 and m.end == frames)
        img = frame.astype(np.float32)
        if dim:
            img = img.mean() + (img - img.mean()) * contrast
        img = img * gain + rng.normal(0, noise, img.shape)
        ok, jpeg = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else frame
        out.append(
            ds.Scene(image, truths, zones, dim, quality, {"beds": len(beds), "frame": k, "new": new, "steady": steady})
        )
    return out


def run_sequences(variants: list[Variant], sequences: list[list[ds.Scene]]) -> dict[str, Tally]:
    """Each variant over every sequence in order, each sequence a camera of its own (the tracker's key)."""
    tallies: dict[str, Tally] = {}
    for v in variants:
        det = build(v)
        if det is None:
            continue
        det.detect(sequences[0][0].image)  # warm-up
        if det.crop_detector is not None:
            det.crop_detector.detect(sequences[0][0].image[:256, :256])
        det.views[0] = 0  # type: ignore[attr-defined]
        tally = Tally()
        for camera, frames in enumerate(sequences):
            for scene in frames:
                zones = scene.zones if det.zone_mode != "frame" else []
                t0 = time.perf_counter()
                found = list(detect_for_camera(det, scene.image, zones, camera) if zones else det.detect(scene.image))
                hit = count(tally, scene, found, time.perf_counter() - t0)
                for is_new, is_steady, h in zip(
                    scene.meta["new"],
                    scene.meta["steady"],
                    hit,  # type: ignore[arg-type]
                    strict=True,
                ):
                    tally.add("steady" if is_steady else "came mid-sequence" if is_new else "went", h)
                for t, h in zip(scene.faces, hit, strict=True):
                    if abs(t.roll) >= 45:
                        tally.add("roll>=45", h)
        tally.views = det.views[0]  # type: ignore[attr-defined]
        tracker = getattr(det, "tracker", None)
        scans = (
            f"{tracker.scans} full scans, {tracker.tracked} tracked frames, {tracker.rescans} zone rescans"
            if tracker is not None and tracker.scans + tracker.tracked
            else "no tracking"
        )
        tallies[v.label] = tally
        det.close()
        print(
            f"  {v.label}: recall {tally.recall('all')} %, precision {tally.precision:5.1f} %, "
            f"{tally.views / tally.frames:.1f} passes/frame, {1000 * tally.seconds / tally.frames:.1f} ms/frame "
            f"({scans})",
            flush=True,
        )
    return tallies


def sequences_main(args: argparse.Namespace, faces: list[np.ndarray], rng: np.random.Generator) -> int:
    n_seq = 1 if args.quick else 8 if args.short and args.sequences > 8 else args.sequences
    variants = SEQ_VARIANTS
    if args.only:
        variants = pick_variants(variants, args.only)
    t0 = time.perf_counter()
    sequences = [make_sequence(rng, faces, args.seq_frames) for _ in range(n_seq)]
    frames = [s for seq in sequences for s in seq]
    print(
        f"{n_seq} sequences x {args.seq_frames} frames ({sum(seq[0].image.shape[1] == 1920 for seq in sequences)}"
        f" at 1080p), {sum(len(s.faces) for s in frames)} faces shown "
        f"({sum(sum(s.meta['new']) for s in frames)} of faces that came mid-sequence), seed {args.seed}, "
        f"generated in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    tallies = run_sequences(variants, sequences)
    sizes = [ds.size_bucket(lo) for lo, _ in ds.SIZE_BUCKETS]
    print(
        f"\nRecall % at IoU >= {IOU} over every frame of the sequences; precision %; passes and ms per frame "
        f"(load average {os.getloadavg()[0]:.1f}):"
    )
    print_table(tallies, ["all", "steady", "came mid-sequence", *sizes, "roll>=45", "upright>=48", "720p4bed", "dim"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=80, help="generated frames (default 80)")
    ap.add_argument("--short", action="store_true", help="30 scenes, 20 clip frames (--sequences: at most 8)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 40 faces, 2 scenes, 2 clip frames, then 1 sequence of 3 frames",
    )
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--only", default="", help="comma-separated variant labels (exact, else substring)")
    ap.add_argument("--all-faces", action="store_true", help="do not pre-select detectable FER faces")
    ap.add_argument("--clip-frames", type=int, default=60)
    ap.add_argument(
        "--sequences",
        type=int,
        default=0,
        help="measure tracking (the track option) on N generated sequences instead (--short: at most 8)",
    )
    ap.add_argument("--seq-frames", type=int, default=10, help="frames per sequence (default 10)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not FER_DIR.is_dir():
        print(f"FER-2013 publictest not found at {FER_DIR}", file=sys.stderr)
        return 2
    n_scenes = 2 if args.quick else 30 if args.short else args.scenes
    clip_frames = 2 if args.quick else 20 if args.short else args.clip_frames
    if args.quick:
        args.seq_frames = 3
    variants = VARIANTS + [Variant(b, b, FRAME) for b in OPTIONAL_BACKENDS if b in available_detectors()]
    missing = [b for b in OPTIONAL_BACKENDS if b not in available_detectors()]
    if args.only:
        variants = pick_variants(variants, args.only)
    rng = np.random.default_rng(args.seed)
    faces = ds.load_faces(FER_DIR, 40 if args.quick else 400, rng)
    if not args.all_faces:
        # the raw box: the same faces whatever the box options
        probe = [create_detector("blazeface", **RAW_BOX), create_detector("haar")]
        pool = len(faces)
        faces, frames = face_frames(faces, probe)
        print(
            f"faces: {len(faces)} of {pool} sampled publictest faces are found upright at 120 px by blazeface "
            "or haar (the scenes use those)"
        )
    else:
        frames = None
    if args.sequences > 0:
        return sequences_main(args, faces, rng)
    t0 = time.perf_counter()
    scenes = [ds.make_scene(rng, faces, frames=frames) for _ in range(n_scenes)]
    n_faces = sum(len(s.faces) for s in scenes)
    print(
        f"{n_scenes} scenes ({sum(s.image.shape[1] == 1920 for s in scenes)} at 1080p), {n_faces} faces, "
        f"{sum(s.dim for s in scenes)} dim, seed {args.seed}, generated in {time.perf_counter() - t0:.1f} s"
    )
    if missing:
        print(f"not installed / not registered: {', '.join(missing)}")
    tallies = run_scenes(variants, scenes)
    print(f"\nRecall % at IoU >= {IOU} by face size and roll; precision %; ms per frame:")
    print_table(tallies)
    if "720p4bed" in next(iter(tallies.values()), Tally()).found:
        print(
            "\nUpright faces >= 48 px in 720p four-bed scenes (the detection target, recall %): "
            + ", ".join(f"{k} {t.recall('720p4bed').strip()}" for k, t in tallies.items())
        )
    print(
        "Upright faces >= 48 px found at all (hit at IoU >= 0.5, or a detection centred on the face), %: "
        + ", ".join(f"{k} {t.recall('upright>=48 found').strip()}" for k, t in tallies.items())
    )
    if frames is not None:
        print(
            f"\nThe same detections against each face's own box (its FER image's framing, measured on the face alone"
            f" by blazeface and haar; see detection_scenes), recall % at IoU >= {IOU}; precision %:"
        )
        print_table(tallies, own=True)
        print(
            "Upright faces >= 48 px in 720p four-bed scenes, against their own box (recall %): "
            + ", ".join(f"{k} {t.recall('own 720p4bed').strip()}" for k, t in tallies.items())
        )
    if clip_frames > 0:
        run_real(variants, clip_frames)
    if args.quick:
        print()
        return sequences_main(args, faces, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
