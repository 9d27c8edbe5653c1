"""Emotion accuracy through the ward path: the same labelled faces classified as FER's own 48x48 images and as the
worker sees them (pasted into a generated ward scene, detected, cropped, resized), per crop rule.

The gap between the two is what the classifier loses to framing: FER-2013 faces are tight, roughly aligned crops,
while the worker cuts a square around a detector's box.  Scenes come from ``bench/detection_scenes.py`` (feathered
faces with context on pillows, 32-200 px, rolls up to +-90 degrees, dim frames, JPEG 50-90), one labelled face per
scene (it may appear up to six times).  Only faces the detector finds (IoU >= 0.5) are classified; each crop rule
classifies the same detections, so the rules compare like for like.

Crop rules are chosen on ``--faces validation`` (the seeded held-out part of train the model never trained on) and
reported on ``--faces publictest``.

    nice -n 10 python -m bench.bench_ward_crops [--faces validation|publictest] [--count 400] [--seed 15]
                                              [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from areya.detectors import FaceBox, create_detector, crop_face
from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.inference import EmotionClassifier
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, FER_TO_AREYA4
from bench import detection_scenes as ds
from bench.bench_detection import match
from bench.ward_path import Zone

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"
MODEL_SEED = 20261129  # the shipped model's seed: its held-out validation part


def labelled_faces(which: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if which == "validation":
        _, data = holdout_split(load_dataset(SHARED, "train"), 0.1, MODEL_SEED)
    else:
        data = load_dataset(SHARED, "publictest")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(data), size=min(count, len(data)), replace=False)
    return data.images[pick], data.labels7[pick]


def crop_rules() -> dict[str, Callable[[np.ndarray, FaceBox], np.ndarray]]:
    """The worker's rule (margin 0.15, eyes levelled) and the alternatives it was chosen from."""
    rules: dict[str, Callable[[np.ndarray, FaceBox], np.ndarray]] = {}
    for margin in (0.0, 0.15, 0.3):
        rules[f"box + {margin:.2f}"] = lambda img, box, m=margin: crop_face(img, box, m, align=None)
    for margin in (0.15, 0.3):
        rules[f"box + {margin:.2f}, eyes level"] = lambda img, box, m=margin: crop_face(img, box, m, align=0.0)
    rules["box + 0.15, eyes >= 10"] = lambda img, box: crop_face(img, box, 0.15, align=10.0)
    return rules


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", choices=("validation", "publictest"), default="validation")
    ap.add_argument("--count", type=int, default=400, help="labelled faces (one scene each)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--model", default=None, help="model name or path (default: the configured one)")
    ap.add_argument("--detector", default="blazeface")
    ap.add_argument("--quick", action="store_true", help="smoke run: 12 faces")
    args = ap.parse_args(argv)
    if args.quick:
        args.count = 12
    if not SHARED.is_dir():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2

    images, labels7 = labelled_faces(args.faces, args.count, args.seed)
    clf = EmotionClassifier.load(args.model)
    det = create_detector(args.detector)
    rules = crop_rules()
    t0 = time.monotonic()

    direct = clf.classify(list(images))
    rng = np.random.default_rng(args.seed)
    crops: dict[str, list[np.ndarray]] = defaultdict(list)
    truth7: list[int] = []
    size_of: list[str] = []
    roll_of: list[str] = []
    dim_of: list[str] = []
    shown = found = 0
    for face, label in zip(images, labels7, strict=True):
        scene = ds.make_scene(rng, [face])
        zones = [Zone(*z) for z in scene.zones]
        detections = det.detect_in_zones(scene.image, zones)
        shown += len(scene.faces)
        for t in scene.faces:  # the best detection per truth
            best = max(detections, key=lambda d, t=t: d.iou(t.box), default=None)
            if best is None or not match([t.box], [best])[1]:
                continue
            found += 1
            truth7.append(int(label))
            size_of.append(ds.size_bucket(t.size))
            roll_of.append(ds.roll_bucket(t.roll))
            dim_of.append("dim" if scene.dim else "lit")
            for name, rule in rules.items():
                crops[name].append(rule(scene.image, best))

    y7 = np.array(truth7)
    in4 = np.array([FER7_CLASSES[i] in FER_TO_AREYA4 for i in y7])
    y4 = np.array(
        [AREYA4_CLASSES.index(FER_TO_AREYA4[FER7_CLASSES[i]]) if ok else -1 for i, ok in zip(y7, in4, strict=True)]
    )

    def scores(results: Sequence, y7_: np.ndarray, in4_: np.ndarray, y4_: np.ndarray) -> tuple[float, float]:
        p7 = np.array([FER7_CLASSES.index(r.label7) for r in results])
        p4 = np.array([AREYA4_CLASSES.index(r.label4) for r in results])
        return float(np.mean(p7 == y7_)), float(np.mean(p4[in4_] == y4_[in4_]))

    d_in4 = np.array([FER7_CLASSES[i] in FER_TO_AREYA4 for i in labels7])
    d_y4 = np.array(
        [
            AREYA4_CLASSES.index(FER_TO_AREYA4[FER7_CLASSES[i]]) if ok else -1
            for i, ok in zip(labels7, d_in4, strict=True)
        ]
    )
    a7, a4 = scores(direct, labels7, d_in4, d_y4)
    print(
        f"{args.faces}: {len(images)} faces, {shown} shown in scenes, {found} detected by {args.detector} "
        f"({found / max(shown, 1):.1%}); model {args.model or 'default'}"
    )
    print(f"{'crop rule':<26} {'7-class':>8} {'4-class':>8}   4-class by size / roll")
    print(f"{'FER 48x48 (direct)':<26} {a7:8.3f} {a4:8.3f}")
    buckets = sorted(set(size_of)) + sorted(set(roll_of)) + ["dim", "lit"]
    for name in rules:
        results = clf.classify(crops[name])
        r7, r4 = scores(results, y7, in4, y4)
        p4 = np.array([AREYA4_CLASSES.index(r.label4) for r in results])
        parts = []
        for b in buckets:
            sel = np.array([b in (s, r, d) for s, r, d in zip(size_of, roll_of, dim_of, strict=True)]) & in4
            if sel.sum() >= 10:
                parts.append(f"{b} {np.mean(p4[sel] == y4[sel]):.2f} (n={int(sel.sum())})")
        print(f"{name:<26} {r7:8.3f} {r4:8.3f}   " + "; ".join(parts))
    print(f"took {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
