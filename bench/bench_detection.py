"""Face detection recall / precision on generated ward scenes, per backend and option set; plus the real clip and
photo of ``../shared/data/video``.

Scenes (``bench/detection_scenes.py``): 1280x720 and 1920x1080 wards, 2-8 bed zones, 1-6 FER-2013 publictest faces
per frame at 32-200 px, feathered onto pillows with context, rolled up to +-90 degrees, dim / low-contrast
frames, JPEG quality 50-90.  A detection matches a face at IoU >= 0.5 (greedy, best score first).  Recall is given
by face size and by roll; precision over all detections (IoU >= 0.5), and "on face": the share of detections whose
centre lies in a face's box, whatever the box's fit (a loose box around a rolled face fails IoU but is no false
face).  Zone variants get the scene's bed zones through
``detect_in_zones`` as the worker does.  ms/frame is wall-clock, one thread.

By default the faces are those of a seeded sample of publictest that BlazeFace or Haar finds upright and alone at
120 px (``--all-faces`` keeps every face: about a quarter of FER's faces - profiles, hands, crops - are found by
neither at any size, which would cap every recall alike).

    nice -n 10 python bench/bench_detection.py [--quick] [--scenes N] [--seed S] [--only LABEL,...] [--all-faces]
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import detection_scenes as ds  # noqa: E402

from areya.detectors import FaceBox, FaceDetector, available_detectors, create_detector  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FER_DIR = SHARED / "fer2013" / "publictest"
CLIP = SHARED / "video" / "expressions-720x576.mp4"
PHOTO = SHARED / "video" / "two-people.jpg"
# hand-labelled once (eyebrows to chin, cheek to cheek) on the 768x512 photo
PHOTO_FACES = [FaceBox(222, 80, 84, 88), FaceBox(430, 130, 84, 86)]
IOU = 0.5
ROT3 = "0/90/270"


@dataclass
class Variant:
    label: str
    name: str
    opts: dict[str, Any] = field(default_factory=dict)


FRAME = {"zone_mode": "frame"}
ZONES = {"zone_mode": "zones"}
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
    Variant(f"blazeface rot {ROT3}", "blazeface", {"rotations": ROT3, **FRAME}),
    Variant(f"blazeface zones rot {ROT3}", "blazeface", {"rotations": ROT3, **ZONES}),
    Variant("blazeface zones rot 0/45/90/270/315", "blazeface", {"rotations": "0/45/90/270/315", **ZONES}),
]
OPTIONAL_BACKENDS = ["mtcnn"]  # benchmarked when areya.detectors registers them


@dataclass
class Tally:
    found: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    detections: int = 0
    true_pos: int = 0
    off_face: int = 0  # detections whose centre lies in no face's box: false faces, not just loose boxes
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


def detectable_faces(faces: list[np.ndarray], probe: list[FaceDetector]) -> list[np.ndarray]:
    """Faces that one of ``probe`` finds upright and alone at 120 px on a plain pillow-grey canvas."""
    keep = []
    for face in faces:
        patch, mask = ds.face_patch(face, 120, (0.85, 0.92, 1.05))
        canvas = np.full((360, 360, 3), 225, np.uint8)
        ds.paste(canvas, patch, mask, 180 - patch.shape[1] // 2, 180 - patch.shape[0] // 2)
        truth = FaceBox(120, 120, 120, 120)
        if any(match([truth], d.detect(canvas))[1] for d in probe):
            keep.append(face)
    return keep


def build(variant: Variant) -> FaceDetector | None:
    """The variant's detector, its backend's ``detect`` counting the views it is run on (``det.views[0]``)."""
    try:
        det = create_detector(variant.name, **variant.opts)
    except (ValueError, RuntimeError) as exc:
        print(f"  {variant.label}: unavailable ({exc})")
        return None
    views = [0]
    for part in (det, det.crop_detector):
        if part is not None:
            _count_views(part, views)
    det.views = views  # type: ignore[attr-defined]
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
            truth = [t.box for t in scene.faces]
            hit, true_pos = match(truth, found)
            tally.seconds += seconds
            tally.frames += 1
            tally.detections += len(found)
            tally.true_pos += true_pos
            tally.off_face += sum(not any(centre_in(f, t) for t in truth) for f in found)
            for t, h in zip(scene.faces, hit, strict=True):
                tally.add("all", h)
                tally.add(ds.size_bucket(t.size), h)
                tally.add(ds.roll_bucket(t.roll), h)
                if abs(t.roll) < 15 and t.size >= 48:
                    tally.add("upright>=48", h)
                if scene.dim:
                    tally.add("dim", h)
                if scene.image.shape[1] == 1280 and scene.meta["beds"] == 4 and abs(t.roll) < 15 and t.size >= 48:
                    tally.add("720p4bed", h)
        tally.views = det.views[0]  # type: ignore[attr-defined]
        tallies[v.label] = tally
        det.close()
        print(f"  {v.label}: recall {tally.recall('all')} %, precision {tally.precision:5.1f} % "
              f"(centre on a face {tally.on_face:5.1f} %), "
              f"{1000 * tally.seconds / tally.frames:.1f} ms/frame", flush=True)
    return tallies


def print_table(tallies: dict[str, Tally]) -> None:
    sizes = [ds.size_bucket(lo) for lo, _ in ds.SIZE_BUCKETS]
    rolls = [ds.roll_bucket(lo) for lo, _ in ds.ROLL_BUCKETS]
    cols = ["all", *sizes, *rolls, "upright>=48", "dim"]
    head = ["variant", *[c.replace("roll ", "r") for c in cols], "prec", "on face", "passes/frame", "ms/frame"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, t in tallies.items():
        cells = [t.recall(c).strip() for c in cols]
        print(f"| {label} | " + " | ".join(cells) + f" | {t.precision:.1f} | {t.on_face:.1f} | "
              f"{t.views / t.frames:.1f} | {1000 * t.seconds / t.frames:.0f} |")
    any_tally = next(iter(tallies.values()), None)
    if any_tally:
        counts = ", ".join(f"{c} {any_tally.found[c][1]}" for c in cols if c in any_tally.found)
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
    print(f"\nReal data: {CLIP.name} ({len(frames)} frames sampled evenly; no zones: whole frame), "
          f"{PHOTO.name} (2 hand-labelled faces)")
    print("| variant | clip frames with a face | clip faces/frame (min-max) | clip ms/frame "
          "| photo hits / detections |")
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
            print(f"| {label} | {with_face}/{len(counts)} | {np.mean(counts):.2f} ({min(counts)}-{max(counts)}) | "
                  f"{1000 * seconds / len(counts):.0f} | {photo_cell} |")
        else:
            print(f"| {label} | - | - | - | {photo_cell} |")
        det.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=80, help="generated frames (default 80)")
    ap.add_argument("--quick", action="store_true", help="30 scenes, 20 clip frames")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--only", default="", help="comma-separated variant labels (exact, else substring)")
    ap.add_argument("--all-faces", action="store_true", help="do not pre-select detectable FER faces")
    ap.add_argument("--clip-frames", type=int, default=60)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not FER_DIR.is_dir():
        print(f"FER-2013 publictest not found at {FER_DIR}", file=sys.stderr)
        return 2
    n_scenes = 30 if args.quick else args.scenes
    clip_frames = 20 if args.quick else args.clip_frames
    variants = VARIANTS + [Variant(b, b, FRAME) for b in OPTIONAL_BACKENDS if b in available_detectors()]
    missing = [b for b in OPTIONAL_BACKENDS if b not in available_detectors()]
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        labels = {v.label for v in variants}
        variants = [v for v in variants if any(w == v.label or (w not in labels and w in v.label) for w in wanted)]
    rng = np.random.default_rng(args.seed)
    faces = ds.load_faces(FER_DIR, 400, rng)
    if not args.all_faces:
        probe = [create_detector("blazeface"), create_detector("haar")]
        pool = len(faces)
        faces = detectable_faces(faces, probe)
        print(f"faces: {len(faces)} of {pool} sampled publictest faces are found upright at 120 px by blazeface "
              "or haar (the scenes use those)")
    t0 = time.perf_counter()
    scenes = [ds.make_scene(rng, faces) for _ in range(n_scenes)]
    n_faces = sum(len(s.faces) for s in scenes)
    print(f"{n_scenes} scenes ({sum(s.image.shape[1] == 1920 for s in scenes)} at 1080p), {n_faces} faces, "
          f"{sum(s.dim for s in scenes)} dim, seed {args.seed}, generated in {time.perf_counter() - t0:.1f} s")
    if missing:
        print(f"not installed / not registered: {', '.join(missing)}")
    tallies = run_scenes(variants, scenes)
    print(f"\nRecall % at IoU >= {IOU} by face size and roll; precision %; ms per frame:")
    print_table(tallies)
    if "720p4bed" in next(iter(tallies.values()), Tally()).found:
        print("\nUpright faces >= 48 px in 720p four-bed scenes (issue 14's target, recall %): " + ", ".join(
            f"{k} {t.recall('720p4bed').strip()}" for k, t in tallies.items()))
    run_real(variants, clip_frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
