"""Model selection figures on the validation part held out from FER-2013's Training split: for each served model
folder, 7-class accuracy and macro-F1 (with per-class F1), the served 4-class accuracy and macro-F1, and the
4-class recall of angry and sad (the classes alerts are made of).  Never PublicTest: that is reported once per
shipped model, by its card.

    nice python bench/bench_validation.py MODEL_DIR [MODEL_DIR ...] [--data DIR] [--split-seed S]

Each folder is scored as served (its members, TTA and calibration); build candidates on copies with
``areya models add-member`` / ``areya models calibrate`` and edit their ``ensemble.toml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.inference import EmotionClassifier
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, FER_TO_AREYA4

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"
SPLIT_SEED = 20261129  # the shipped model's held-out part (its config's split_seed)
VAL_FRACTION = 0.1


def f1_per_class(y: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    out = []
    for c in range(k):
        tp = np.sum((p == c) & (y == c))
        wrong = np.sum((p == c) & (y != c)) + np.sum((p != c) & (y == c))
        out.append(2 * tp / max(2 * tp + wrong, 1))
    return np.array(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model folders (or names under models/)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    ap.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    args = ap.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"needs the FER-2013 tree with train/ at {args.data}", file=sys.stderr)
        return 2
    _, val = holdout_split(load_dataset(args.data, "train"), args.val_fraction, args.split_seed)
    y7 = np.asarray(val.labels7)
    in4 = np.array([FER7_CLASSES[i] in FER_TO_AREYA4 for i in y7])
    y4 = np.array([AREYA4_CLASSES.index(FER_TO_AREYA4[FER7_CLASSES[i]]) for i in y7[in4]])
    print(f"validation part: {len(y7)} faces ({int(in4.sum())} in the four classes), split seed {args.split_seed}")
    print("| model | 7-class acc | 7-class macro-F1 | F1 per class (" + ", ".join(FER7_CLASSES)
          + ") | 4-class acc | 4-class macro-F1 | angry recall | sad recall |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        results = EmotionClassifier.load(name).classify(list(val.images))
        p7 = np.array([r.probs7.argmax() for r in results])
        p4 = np.array([r.probs4.argmax() for r in results])[in4]
        f7 = f1_per_class(y7, p7, 7)
        f4 = f1_per_class(y4, p4, 4)
        recall = {c: float(np.mean(p4[y4 == AREYA4_CLASSES.index(c)] == AREYA4_CLASSES.index(c)))
                  for c in ("angry", "sad")}
        print(f"| {name} | {np.mean(p7 == y7):.4f} | {f7.mean():.4f} | {' '.join(f'{v:.2f}' for v in f7)} | "
              f"{np.mean(p4 == y4):.4f} | {f4.mean():.4f} | {recall['angry']:.3f} | {recall['sad']:.3f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
