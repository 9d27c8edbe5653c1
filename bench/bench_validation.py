"""Model selection figures on the validation part held out from FER-2013's Training split: for each served model
folder, 7-class accuracy and macro-F1 (with per-class F1), the served 4-class accuracy and macro-F1, and the
4-class recall of angry and sad (the classes alerts are made of).  Never PublicTest: that is reported once per
shipped model, by its card.

    nice python -m bench.bench_validation MODEL_DIR [MODEL_DIR ...] [--data DIR] [--split-seed S] [--without-copies]
    nice python -m bench.bench_validation --quick [MODEL_DIR ...]

``--without-copies`` leaves out the validation faces that are pixel-identical to a face of the training part
(208 of the 2,872: FER-2013 repeats faces), which the models trained on.

Each folder is scored as served (its members, TTA and calibration); build candidates on copies with
``areya models add-member`` / ``areya models calibrate`` and edit their ``ensemble.toml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from areya.emotion.dataset import holdout_split, load_dataset, without_copies
from areya.emotion.inference import EmotionClassifier
from areya.emotion.metrics import classification_report
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, FER_TO_AREYA4
from bench import quick_subset

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"
SPLIT_SEED = 20261129  # the shipped model's held-out part (its config's split_seed)
VAL_FRACTION = 0.1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="model folders (or names under models/; --quick: areya-fer)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    ap.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    ap.add_argument("--without-copies", action="store_true", help="leave out copies of training-part faces")
    ap.add_argument("--quick", action="store_true", help="smoke run: 140 validation faces (default model areya-fer)")
    args = ap.parse_args(argv)
    if not args.models:
        if not args.quick:
            ap.error("give at least one model folder")
        args.models = ["areya-fer"]
    if not (args.data / "train").is_dir():
        print(f"needs the FER-2013 tree with train/ at {args.data}", file=sys.stderr)
        return 2
    rest, val = holdout_split(load_dataset(args.data, "train"), args.val_fraction, args.split_seed)
    if args.without_copies:
        val = without_copies(val, rest)
    if args.quick:
        val = quick_subset(val, 140)
    y7 = np.asarray(val.labels7)
    in4 = np.array([FER7_CLASSES[i] in FER_TO_AREYA4 for i in y7])
    y4 = np.array([AREYA4_CLASSES.index(FER_TO_AREYA4[FER7_CLASSES[i]]) for i in y7[in4]])
    print(f"{val.report.source}: {len(y7)} faces ({int(in4.sum())} in the four classes), split seed {args.split_seed}")
    print(
        "| model | 7-class acc | 7-class macro-F1 | F1 per class ("
        + ", ".join(FER7_CLASSES)
        + ") | 4-class acc | 4-class macro-F1 | angry recall | sad recall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        results = EmotionClassifier.load(name).classify(list(val.images))
        r7 = classification_report(y7, np.array([r.probs7 for r in results]), FER7_CLASSES)
        r4 = classification_report(y4, np.array([r.probs4 for r in results])[in4], AREYA4_CLASSES)
        f7 = " ".join(f"{r7.per_class[c]['f1']:.2f}" for c in FER7_CLASSES)
        print(
            f"| {name} | {r7.accuracy:.4f} | {r7.macro_f1:.4f} | {f7} | {r4.accuracy:.4f} | {r4.macro_f1:.4f} | "
            f"{r4.per_class['angry']['recall']:.3f} | {r4.per_class['sad']['recall']:.3f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
