"""The night ward: how many faces the worker finds, and how well it reads them, in dim light, small, lying, in IR
grey, blurred by motion and under a blanket.

Scenes: a 1280x720 ward of six beds (3 x 2, ``detection_scenes.draw_ward``), one PublicTest face per bed on its
pillow (feathered into it with its context ring, ``detection_scenes.paste_face``), every frame through JPEG at
quality 50-90.  The faces are angry, happy, neutral and sad ones in equal numbers, drawn by a seed fixed here, and
only those BlazeFace or Haar finds upright and alone at 120 px (``bench_detection.face_frames``: about a quarter
of FER's images - profiles, hands, crops - are found by neither at any size); every bucket uses the same faces,
so buckets differ by their condition only.  A face is found when a detection has IoU >= 0.5 with the face's own
box (its FER image's framing, ``detection_scenes.Truth.own``).

Buckets (faces 64-112 px unless said):

* ``lit upright``: the reference; ward light, rolled at most 10 degrees;
* ``dim``: frame gain 0.35-0.6, rolling-shutter flicker (horizontal bands, 3-10 %), sensor noise (sigma 3-7);
* ``small``: faces 40-63 px, lit;
* ``lying``: rolled 60-90 degrees to either side, lit;
* ``IR grey``: an infrared night picture: grey, flat (contrast 0.6-0.85), soft, noisy, darker at the edges;
* ``motion blur``: each face smeared 6-16 % of its side along a random direction, lit;
* ``blanket``: a blanket drawn up over the chin (its edge 26-40 % of the face's side below its centre: the chin,
  sometimes the lower lip), lit;
* ``night``: the combined condition: dim (7 in 10) or IR grey, any roll up to 90 degrees, 3 in 10 faces under a
  blanket, 1 in 4 blurred.

Per bucket: detection recall and precision; 4-class accuracy of the faces found, read through the worker's own
path (the configured detector as the worker runs it on a camera's frame that gets a full zone scan,
``areya.detectors.detect_for_camera``: each scene is the first frame of a camera of its own; the worker's crop
``areya.worker.worker.crop``, the configured classifier); the share read right of all faces shown; the mean
negative probability (P(angry) + P(sad)) of the neutral faces found, and the share of them read as angry or sad.

    nice -n 5 python -m bench.bench_night_ward [--faces 480] [--buckets dim,lying] [--detector-option NAME=VALUE]
                                               [--quick]

``--quick``: 6 faces (one scene) per bucket.  Without ``../shared/data/fer2013/publictest`` it says so and exits 0.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import detection_scenes as ds

FER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013" / "publictest"
SEED = 20261207  # the faces, scenes and conditions of the recorded runs
FRAME = (1280, 720)
GRID = (3, 2)  # six beds
CLASSES = ("angry", "happy", "neutral", "sad")  # FER folders of the 4-class scheme (neutral = relaxed)
IOU = 0.5


@dataclass(frozen=True)
class Bucket:
    name: str
    size: tuple[int, int] = (64, 112)  # face side in px, inclusive
    roll: str = "upright"  # upright (+-10), lying (60-90 either side), any (+-90)
    light: str = "lit"  # lit, dim, ir, night (dim or ir)
    blur: float = 0.0  # share of faces motion-blurred
    blanket: float = 0.0  # share of faces with a blanket over the chin


BUCKETS = (
    Bucket("lit upright"),
    Bucket("dim", light="dim"),
    Bucket("small", size=(40, 63)),
    Bucket("lying", roll="lying"),
    Bucket("IR grey", light="ir"),
    Bucket("motion blur", blur=1.0),
    Bucket("blanket", blanket=1.0),
    Bucket("night", roll="any", light="night", blur=0.25, blanket=0.3),
)


# --------------------------------------------------------------------------- scenes


def _roll(rng: np.random.Generator, kind: str) -> float:
    a, b, side = rng.uniform(-10, 10), rng.uniform(60, 90), rng.choice([-1.0, 1.0])
    c = rng.uniform(-90, 90)
    return float(a if kind == "upright" else side * b if kind == "lying" else c)


def motion_blur(length: float, angle: float) -> Any:
    """A patch filter smearing patch and mask ``length`` px along ``angle`` degrees (a head that moved)."""
    n = max(3, int(round(length)) | 1)
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2, :] = 1.0
    turn = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, turn, (n, n))
    kernel /= max(float(kernel.sum()), 1e-6)

    def apply(patch: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_REPLICATE), cv2.filter2D(mask, -1, kernel)

    return apply


def blanket_over(
    frame: np.ndarray, rng: np.random.Generator, box: Any, bed: ds.Bed, edge: float, colour: np.ndarray
) -> None:
    """A blanket drawn up to ``edge`` x the face's side below its centre, across the bed, with a soft wavy edge."""
    h, w = frame.shape[:2]
    cx, cy = box.center()
    top = cy + edge * box.w
    x0, x1 = max(bed.x + 6, 0), min(bed.x + bed.w - 6, w)
    y1 = min(bed.y + bed.h - 6, h)
    if top >= y1 or x1 <= x0:
        return
    xs = np.arange(x0, x1)
    wave = top + 0.04 * box.w * np.sin(xs / max(box.w * 0.4, 1.0) + rng.uniform(0, 2 * math.pi))
    mask = np.zeros((h, w), np.float32)
    rows = np.arange(h)[:, None]
    mask[:, x0:x1] = (rows >= wave[None, :]) & (rows < y1)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)[:, :, None]
    folds = 1.0 + 0.06 * np.sin(rows / max(box.w * 0.15, 1.0))[:, :, None]
    cloth = np.broadcast_to(colour, frame.shape) * folds
    frame[:] = np.clip(frame * (1 - mask) + cloth * mask, 0, 255).astype(np.uint8)


def light(frame: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """The frame as the camera gives it under ``kind`` (lit, dim, ir; night = dim or ir, drawn)."""
    if kind == "night":
        kind = "dim" if rng.random() < 0.7 else "ir"
    img = frame.astype(np.float32)
    h, w = img.shape[:2]
    if kind == "lit":
        img *= rng.uniform(0.85, 1.1)
        img += rng.normal(0, 1.5, img.shape)
    elif kind == "dim":
        img *= rng.uniform(0.35, 0.6)
        bands = 1.0 + rng.uniform(0.03, 0.1) * np.sin(
            2 * math.pi * np.arange(h) / rng.uniform(60, 240) + rng.uniform(0, 6.3)
        )
        img *= bands[:, None, None].astype(np.float32)
        img += rng.normal(0, rng.uniform(3, 7), img.shape)
    elif kind == "ir":
        grey = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey = grey.mean() + (grey - grey.mean()) * rng.uniform(0.6, 0.85)
        grey *= rng.uniform(0.55, 0.85)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        grey *= 1.0 - rng.uniform(0.15, 0.35) * r2 / 2
        grey = cv2.GaussianBlur(grey, (0, 0), rng.uniform(0.5, 1.0))
        grey += rng.normal(0, rng.uniform(3, 6), grey.shape)
        img = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        raise ValueError(f"unknown light {kind!r}")
    return np.clip(img, 0, 255).astype(np.uint8)


def night_scene(
    rng: np.random.Generator, faces: Sequence[np.ndarray], frames: Sequence[Any], bucket: Bucket
) -> ds.Scene:
    """Six beds, one face each (``faces``, with their FER framings ``frames``), as ``bucket`` says."""
    w, h = FRAME
    frame, beds = ds.draw_ward(rng, w, h, grid=GRID)
    truths = []
    for b, (bed, face, framing) in enumerate(zip(beds, faces, frames, strict=False)):
        size = int(rng.integers(bucket.size[0], bucket.size[1] + 1))
        roll = _roll(rng, bucket.roll)
        cx = bed.x + bed.w * rng.uniform(0.35, 0.65)
        cy = max(bed.y + bed.h * rng.uniform(0.17, 0.27), bed.y + 0.6 * size)
        tint = ds.skin_tint(rng)
        blurred = rng.random() < bucket.blur
        smear = motion_blur(size * rng.uniform(0.06, 0.16), rng.uniform(0, 180))
        covered = rng.random() < bucket.blanket
        edge, colour = rng.uniform(0.26, 0.4), rng.uniform(60, 200, 3)
        box, m, origin = ds.paste_face(frame, face, size, roll, (cx, cy), tint, smear if blurred else None)
        if covered:
            blanket_over(frame, rng, box, bed, edge, colour)
        own = None
        if framing is not None:
            own = ds.own_box(framing, size, m, ds.face_centre_in_patch(ds.face_patch_side(size)), origin)
        truths.append(ds.Truth(box, size, roll, b, own))
    frame = light(frame, rng, bucket.light)
    quality = int(rng.integers(50, 91))
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else frame
    zones = [bed.zone(w, h) for bed in beds]
    return ds.Scene(image, truths, zones, bucket.light != "lit", quality, {"bucket": bucket.name})


# --------------------------------------------------------------------------- faces


def labelled_faces(count: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """``count`` PublicTest faces per class of :data:`CLASSES` (seeded order), as 48x48 gray, with their class."""
    rng = np.random.default_rng(seed)
    faces, labels = [], []
    for name in CLASSES:
        files = sorted(p for p in (FER_DIR / name).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        for i in rng.permutation(len(files))[:count]:
            img = cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
            if img is not None:
                faces.append(img)
                labels.append(name)
    return faces, labels


def detectable(
    faces: list[np.ndarray], labels: list[str], per_class: int, seed: int
) -> tuple[list[np.ndarray], list[str], list[Any]]:
    """Up to ``per_class`` faces of each class that BlazeFace or Haar finds upright alone at 120 px, with their
    own framing (``bench_detection.face_frames``), interleaved by class in a seeded order."""
    from areya.detectors import create_detector
    from bench.bench_detection import RAW_BOX, face_frames

    probe = [create_detector("blazeface", **RAW_BOX), create_detector("haar")]
    kept, frames = face_frames(faces, probe)
    index = {id(f): i for i, f in enumerate(faces)}
    by_class: dict[str, list[tuple[np.ndarray, Any]]] = {name: [] for name in CLASSES}
    for face, framing in zip(kept, frames, strict=True):
        by_class[labels[index[id(face)]]].append((face, framing))
    picked = [(name, item) for name in CLASSES for item in by_class[name][:per_class]]
    order = np.random.default_rng(seed + 1).permutation(len(picked))
    out_faces = [picked[i][1][0] for i in order]
    out_labels = [picked[i][0] for i in order]
    out_frames = [picked[i][1][1] for i in order]
    return out_faces, out_labels, out_frames


# --------------------------------------------------------------------------- the ward path


@dataclass
class Reading:
    """One face shown, and what the worker made of it."""

    bucket: str
    label: str  # FER class (angry, happy, neutral, sad); "" for a detection that is no face
    size: int
    roll: float
    found: bool
    box: Any = None
    crop: np.ndarray | None = None
    probs4: np.ndarray | None = None

    @property
    def truth4(self) -> str:
        return "relaxed" if self.label == "neutral" else self.label or "no face"


@dataclass
class Tally:
    readings: list[Reading] = field(default_factory=list)
    detections: int = 0
    true_pos: int = 0
    false_faces: list[Reading] = field(default_factory=list)  # the detections that match no face
    seconds: float = 0.0


def match(truth: Sequence[Any], found: Sequence[Any]) -> tuple[list[Any], set[int]]:
    """Greedy, best score first: per truth the detection matched to it at IoU >= :data:`IOU` (or None), and the
    indices of the detections matched."""
    hit: list[Any] = [None] * len(truth)
    used: set[int] = set()
    for j in sorted(range(len(found)), key=lambda k: -found[k].score):
        det = found[j]
        best, best_iou = -1, IOU
        for i, t in enumerate(truth):
            if hit[i] is None and (v := det.iou(t)) >= best_iou:
                best, best_iou = i, v
        if best >= 0:
            hit[best] = det
            used.add(j)
    return hit, used


def run_bucket(
    bucket: Bucket,
    faces: list[np.ndarray],
    labels: list[str],
    frames: list[Any],
    detector: Any,
    seed: int,
) -> Tally:
    """Every face of ``faces`` shown once in ``bucket``'s scenes (six a scene), found and cut as the worker does:
    each scene is the first frame of a camera of its own, which gets the worker's full zone scan
    (``areya.detectors.detect_for_camera``: with the default ``track=4`` and ``zone_turns=90/270``, one turned look
    per window without a face, 90 degrees on a camera's first scan)."""
    from areya.detectors import detect_for_camera
    from areya.worker.worker import crop as worker_crop

    rng = np.random.default_rng([seed, BUCKETS.index(bucket) if bucket in BUCKETS else 99])
    tally = Tally()
    per = GRID[0] * GRID[1]
    for start in range(0, len(faces), per):
        part = slice(start, start + per)
        scene = night_scene(rng, faces[part], frames[part], bucket)
        t0 = time.perf_counter()
        camera = ("night-ward", bucket.name, start)
        found = list(detect_for_camera(detector, scene.image, scene.zones, camera))
        tally.seconds += time.perf_counter() - t0
        if getattr(detector, "tracker", None) is not None:
            detector.tracker.forget(camera)
        truth = [t.own or t.box for t in scene.faces]
        hit, used = match(truth, found)
        tally.detections += len(found)
        tally.true_pos += len(used)
        for t, det, label in zip(scene.faces, hit, labels[part], strict=False):
            r = Reading(bucket.name, label, t.size, t.roll, det is not None, det)
            if det is not None:
                r.crop = worker_crop(scene.image, det, 0.15)
            tally.readings.append(r)
        for j, det in enumerate(found):
            if j not in used:
                size = max(det.w, det.h)
                crop = worker_crop(scene.image, det, 0.15)
                tally.false_faces.append(Reading(bucket.name, "", size, det.roll, True, det, crop))
    return tally


def classify(tally: Tally, classifier: Any) -> None:
    """Read every face found (and every detection that is no face) as the worker does."""

    found = [r for r in tally.readings if r.found] + tally.false_faces
    for r, res in zip(found, classifier.classify([r.crop for r in found]), strict=True):
        r.probs4 = np.asarray(res.probs4, np.float64)


# --------------------------------------------------------------------------- figures

AREYA4 = ("angry", "happy", "relaxed", "sad")


def right(r: Reading) -> bool:
    return r.probs4 is not None and AREYA4[int(np.argmax(r.probs4))] == r.truth4


def negative(r: Reading) -> float:
    assert r.probs4 is not None
    return float(r.probs4[0] + r.probs4[3])


def figures(tally: Tally) -> dict[str, Any]:
    rs = tally.readings
    found = [r for r in rs if r.found]
    neutral = [r for r in found if r.label == "neutral"]
    return {
        "faces": len(rs),
        "recall": len(found) / max(len(rs), 1),
        "precision": tally.true_pos / tally.detections if tally.detections else float("nan"),
        "acc": sum(right(r) for r in found) / len(found) if found else float("nan"),
        "read_right": sum(right(r) for r in found) / max(len(rs), 1),
        "neutral_neg": float(np.mean([negative(r) for r in neutral])) if neutral else float("nan"),
        "neutral_as_neg": float(np.mean([AREYA4[int(np.argmax(r.probs4))] in ("angry", "sad") for r in neutral]))
        if neutral
        else float("nan"),
        "n_neutral": len(neutral),
        "false": len(tally.false_faces),
        "ms": 1000 * tally.seconds / max(1, math.ceil(len(rs) / (GRID[0] * GRID[1]))),
    }


def pct(v: float) -> str:
    return "-" if v != v else f"{100 * v:.1f}"


def print_table(tallies: dict[str, Tally]) -> None:
    print(
        "| bucket | faces | recall % | precision % | 4-class acc. of found % | read right of all % "
        "| neutral: mean P(neg) % | neutral read angry/sad % | ms / frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t in tallies.items():
        f = figures(t)
        print(
            f"| {name} | {f['faces']} | {pct(f['recall'])} | {pct(f['precision'])} | {pct(f['acc'])} "
            f"| {pct(f['read_right'])} | {pct(f['neutral_neg'])} (n={f['n_neutral']}) | {pct(f['neutral_as_neg'])} "
            f"| {f['ms']:.0f} |"
        )


def print_breakdown(tallies: dict[str, Tally]) -> None:
    """Recall by face size and roll where the bucket varies them."""
    sizes = ((40, 52), (53, 63), (64, 79), (80, 95), (96, 112))
    rolls = ((0, 30), (30, 60), (60, 75), (75, 91))
    for name, t in tallies.items():
        rs = t.readings
        parts = []
        for lo, hi in sizes:
            sel = [r for r in rs if lo <= r.size <= hi]
            if sel and len({r.size for r in rs}) > 1:
                parts.append(f"{lo}-{hi} px {pct(np.mean([r.found for r in sel]))} (n={len(sel)})")
        if any(abs(r.roll) >= 30 for r in rs):
            for lo, hi in rolls:
                sel = [r for r in rs if lo <= abs(r.roll) < hi]
                if sel:
                    parts.append(f"roll {lo}-{min(hi, 90)} {pct(np.mean([r.found for r in sel]))} (n={len(sel)})")
            small_flat = [r for r in rs if r.size <= 79 and abs(r.roll) >= 75]
            if small_flat:
                parts.append(
                    f"64-79 px at 75-90 deg {pct(np.mean([r.found for r in small_flat]))} (n={len(small_flat)})"
                )
        if parts:
            print(f"{name}: recall % " + "; ".join(parts))


def build_detector(options: Sequence[str]) -> Any:
    from areya.config import Settings
    from areya.detectors import detector_from_settings

    pairs = dict(o.split("=", 1) for o in options)
    return detector_from_settings(Settings(), options=pairs)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=480, help="faces per bucket (a multiple of 24 keeps classes even)")
    ap.add_argument("--buckets", default="", help="comma-separated bucket names (default: all)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--model", default=None, help="emotion model name or path (default: the configured one)")
    ap.add_argument(
        "--detector-option", action="append", default=[], metavar="NAME=VALUE", help="over the configured options"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 6 faces (one scene) per bucket")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not FER_DIR.is_dir():
        print(f"skipped: FER-2013 PublicTest not found at {FER_DIR}")
        return 0
    count = 6 if args.quick else args.faces
    buckets = list(BUCKETS)
    if args.buckets:
        wanted = [b.strip() for b in args.buckets.split(",") if b.strip()]
        unknown = [w for w in wanted if w not in {b.name for b in BUCKETS}]
        if unknown:
            print(f"unknown bucket(s) {unknown}: choose from {', '.join(b.name for b in BUCKETS)}", file=sys.stderr)
            return 2
        buckets = [b for b in BUCKETS if b.name in wanted]

    from areya.emotion.inference import EmotionClassifier

    t0 = time.perf_counter()
    per_class = math.ceil(count / len(CLASSES))
    pool, pool_labels = labelled_faces(per_class * 2 if args.quick else math.ceil(per_class * 1.6), args.seed)
    faces, labels, frames = detectable(pool, pool_labels, per_class, args.seed)
    faces, labels, frames = faces[:count], labels[:count], frames[:count]
    detector = build_detector(args.detector_option)
    classifier = EmotionClassifier.load(args.model)
    print(
        f"{len(faces)} faces per bucket ({', '.join(f'{c} {labels.count(c)}' for c in CLASSES)}) of {len(pool)} "
        f"drawn PublicTest faces found upright alone at 120 px; seed {args.seed}; detector {detector.name} "
        f"{' '.join(args.detector_option) or '(configured options)'}; model {classifier.model_version}"
    )
    tallies: dict[str, Tally] = {}
    for bucket in buckets:
        tally = run_bucket(bucket, faces, labels, frames, detector, args.seed)
        classify(tally, classifier)
        tallies[bucket.name] = tally
    print()
    print_table(tallies)
    print()
    print_breakdown(tallies)
    print(f"\ntook {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
