"""Model selection figures on the validation part held out from FER-2013's Training split: for each served model
folder, 7-class accuracy and macro-F1 (with per-class F1), the served 4-class accuracy and macro-F1, and the
4-class recall of angry and sad (the classes alerts are made of).  Never PublicTest: that is reported once per
shipped model, by its card.

    nice python -m bench.bench_validation MODEL_DIR [MODEL_DIR ...] [--data DIR] [--split-seed S] [--without-copies]
        [--labels fer2013|ferplus]
    nice python -m bench.bench_validation --quick [MODEL_DIR ...]

``--labels ferplus`` scores against the FER+ majority of each face (``ferplus_votes.csv`` in the data folder;
faces with a unique majority among the seven classes, as ``areya evaluate --labels ferplus``) and adds the
served answers' ECE and their cross-entropy against the vote distributions (vote NLL).

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

from areya.emotion.calibration import expected_calibration_error
from areya.emotion.dataset import holdout_split, load_dataset, without_copies
from areya.emotion.evaluate import ferplus_labels
from areya.emotion.ferplus import FerPlusVotes, default_votes_path
from areya.emotion.inference import EmotionClassifier
from areya.emotion.metrics import classification_report, soft_nll
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, SCHEME4, SCHEME7, fer7_to_scheme_labels
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
    ap.add_argument("--labels", choices=("fer2013", "ferplus"), default="fer2013", help="labels scored against")
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
    if args.labels == "ferplus":
        votes = FerPlusVotes.load(default_votes_path(args.data))
        y7, d7, _ = ferplus_labels(val, votes, SCHEME7)
        y4, d4, _ = ferplus_labels(val, votes, SCHEME4)
    else:
        y7, d7 = np.asarray(val.labels7), None
        y4, d4 = fer7_to_scheme_labels(y7, SCHEME4), None
    in7, in4 = y7 >= 0, y4 >= 0
    print(
        f"{val.report.source}: {int(in7.sum())} faces ({int(in4.sum())} in the four classes), split seed "
        f"{args.split_seed}, labels {args.labels}"
    )
    extra = " | ECE 7 / 4 | vote NLL 7 / 4 |" if d7 is not None else " |"
    print(
        "| model | 7-class acc | 7-class macro-F1 | F1 per class ("
        + ", ".join(FER7_CLASSES)
        + ") | 4-class acc | 4-class macro-F1 | angry recall | sad recall"
        + extra
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|---|" if d7 is not None else ""))
    for name in args.models:
        results = EmotionClassifier.load(name).classify(list(val.images))
        p7, p4 = np.array([r.probs7 for r in results]), np.array([r.probs4 for r in results])
        r7 = classification_report(y7[in7], p7[in7], FER7_CLASSES)
        r4 = classification_report(y4[in4], p4[in4], AREYA4_CLASSES)
        f7 = " ".join(f"{r7.per_class[c]['f1']:.2f}" for c in FER7_CLASSES)
        tail = " |"
        if d7 is not None and d4 is not None:
            e7, e4 = expected_calibration_error(p7[in7], y7[in7]), expected_calibration_error(p4[in4], y4[in4])
            ece = f"{e7:.4f} / {e4:.4f}"
            nll = f"{soft_nll(p7[in7], d7[in7]):.4f} / {soft_nll(p4[in4], d4[in4]):.4f}"
            tail = f" | {ece} | {nll} |"
        print(
            f"| {name} | {r7.accuracy:.4f} | {r7.macro_f1:.4f} | {f7} | {r4.accuracy:.4f} | {r4.macro_f1:.4f} | "
            f"{r4.per_class['angry']['recall']:.3f} | {r4.per_class['sad']['recall']:.3f}{tail}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
