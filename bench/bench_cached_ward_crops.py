"""4-class accuracy of one or more emotion models on the same cached ward crops.

The crops are the ``.npz`` that ``bench_alert_rules.py --through-ward --crops-cache FILE`` writes: per Areya
class, faces pasted into generated ward scenes, found by the default detector and cut by the worker's crop rule,
already resized to the classifier's 48x48 input.  Every model reads the very same crops, so the figures compare
models and nothing else.  The classes are balanced (``--faces-per-class`` of that bench), so the accuracy is not
comparable with ``bench_ward_crops.py`` (the datasets' own class mix).

    nice python -m bench.bench_cached_ward_crops runs/ward-crops-validation-300-seed7.npz areya-fer [OTHER_MODEL...]
    nice python -m bench.bench_cached_ward_crops --quick [MODEL...]   # crops of 3 PublicTest faces per class

``--quick`` first writes a crops file of its own (3 PublicTest faces per class through the ward path, as
``bench_alert_rules`` writes one) into a temporary folder, then reads it as usual (default model ``areya-fer``).

Prints, per model, the model version, the number of members, the accuracy over all crops and per class.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from areya.emotion.inference import EmotionClassifier
from areya.emotion.schemes import AREYA4_CLASSES


def quick_crops(path: Path, model: str, per_class: int = 3, seed: int = 7) -> None:
    """Write a small crops file at ``path`` the way ``bench_alert_rules --through-ward --crops-cache`` does."""
    from bench.bench_alert_rules import DEFAULT_DATA, FaceBank, publictest_faces

    rng = np.random.default_rng(seed)
    FaceBank.classify_through_ward(publictest_faces(DEFAULT_DATA, per_class, rng), model, rng, cache=path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "crops", type=Path, nargs="?", help=".npz written by bench_alert_rules.py --through-ward --crops-cache"
    )
    ap.add_argument("models", nargs="*", help="model names or folders")
    ap.add_argument("--quick", action="store_true", help="smoke run on a crops file it writes (see above)")
    args = ap.parse_args(argv)
    if not args.quick:
        if args.crops is None or not args.models:
            ap.error("give a crops file and at least one model")
        return measure(args.crops, args.models)
    # --quick: every positional is a model
    models = [str(args.crops), *args.models] if args.crops is not None else ["areya-fer"]
    from bench.bench_alert_rules import DEFAULT_DATA

    if not DEFAULT_DATA.is_dir():
        print(f"--quick needs FER-2013 PublicTest at {DEFAULT_DATA.resolve()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-cached-ward-crops-") as tmp:
        crops = Path(tmp) / "ward-crops-quick.npz"
        quick_crops(crops, models[0])
        return measure(crops, models)


def measure(crops_file: Path, models: Sequence[str]) -> int:
    with np.load(crops_file) as packed:
        crops = {label: packed[label] for label in packed.files}
    unknown = sorted(set(crops) - set(AREYA4_CLASSES))
    if unknown:
        raise SystemExit(f"{crops_file}: not Areya classes: {', '.join(unknown)}")
    print(f"{crops_file}: " + ", ".join(f"{k} {len(v)}" for k, v in crops.items()) + " crops")
    for model in models:
        clf = EmotionClassifier.load(model)
        hits = total = 0
        per_class = {}
        for label, faces in crops.items():
            probs4, _ = clf.predict_arrays(faces.astype(np.float32)[..., None])
            right = np.argmax(probs4, axis=1) == AREYA4_CLASSES.index(label)
            per_class[label] = float(right.mean()) if right.size else float("nan")
            hits += int(right.sum())
            total += right.size
        classes = ", ".join(f"{k} {v:.3f}" for k, v in per_class.items())
        print(
            f"{model}: {clf.model_version}, {clf.members} member(s): 4-class accuracy {hits / total:.4f} "
            f"on {total} crops ({classes})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
