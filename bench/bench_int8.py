"""What int8 weights would give the served emotion model: each member rebuilt in float32, exported and converted
to TensorFlow Lite with dynamic-range quantization (int8 weights), then measured against the Keras model as
served today (mixed bfloat16) - faces per CPU-second per network at batch 256 on one thread, and the 7-class
argmax of the whole ensemble (members averaged, mirror TTA as served) on the validation part held out from
Training: accuracy and agreement.  Not wired into serving; a measurement for deciding whether to.

    nice python -m bench.bench_int8 [--model areya-fer] [--data ../shared/data/fer2013] [--split-seed S]
                                [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"
BATCH = 256


def faces_per_cpu_second(run: Callable[[], object], repeats: int = 5) -> float:
    run()  # warm-up
    t0 = time.process_time()
    for _ in range(repeats):
        run()
    return BATCH * repeats / max(time.process_time() - t0, 1e-9)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name or folder (default: areya-fer)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--split-seed", type=int, default=20261129)
    ap.add_argument("--quick", action="store_true", help="smoke run: the first member, 64 faces, one timed batch")
    args = ap.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"needs the FER-2013 tree with train/ at {args.data}", file=sys.stderr)
        return 2
    import keras

    import areya.emotion.network  # noqa: F401  (registers the custom layers that load_model needs)
    from areya.emotion.dataset import holdout_split, load_dataset
    from areya.emotion.ensemble import Ensemble
    from areya.emotion.inference import resolve_model_path
    from areya.emotion.lite import LiteMember, quantize_member

    path = resolve_model_path(args.model)
    folder = path.parent
    ensemble = Ensemble.load(folder)
    members = list(ensemble.members) if ensemble else [path.name]
    if args.quick:
        members = members[:1]
    tta = ensemble.tta_flip if ensemble else True
    _, val = holdout_split(load_dataset(args.data, "train"), 0.1, args.split_seed)
    faces = slice(0, 64 if args.quick else None)
    x = np.asarray(val.images[faces], np.float32).reshape(-1, 48, 48, 1)
    y = np.asarray(val.labels7[faces])
    repeats = 1 if args.quick else 5
    views = [x, np.ascontiguousarray(x[:, :, ::-1])] if tta else [x]
    probe = np.random.default_rng(0).integers(0, 256, (BATCH, 48, 48, 1)).astype(np.float32)
    served: list[np.ndarray] = []
    int8: list[np.ndarray] = []
    print(f"model {folder.name}: members {', '.join(members)}, TTA {tta}; validation part {len(y)} faces")
    work = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    for member in members:
        model = keras.models.load_model(folder / member, compile=False)
        shutil.copyfile(folder / member, work / member)
        shutil.copyfile(Ensemble.member_config(folder, member), Ensemble.member_config(work, member))
        blob_path = quantize_member(work, member)
        member_lite = LiteMember(blob_path, num_threads=1)

        def lite(batch: np.ndarray, member_lite: LiteMember = member_lite) -> np.ndarray:
            return member_lite.predict_on_batch(batch)["emotion7"]

        blob_mb = blob_path.stat().st_size / 1e6
        keras_speed = faces_per_cpu_second(lambda model=model: model.predict_on_batch(probe), repeats)
        lite_speed = faces_per_cpu_second(lambda lite=lite: lite(probe), repeats)
        print(
            f"  {member}: {blob_mb:.1f} MB as int8 TFLite; faces per CPU-second at batch {BATCH}: "
            f"Keras (served) {keras_speed:.0f}, int8 TFLite {lite_speed:.0f} ({lite_speed / keras_speed:.2f}x)",
            flush=True,
        )
        for view in views:
            served.append(np.asarray(model.predict(view, batch_size=BATCH, verbose=0)["emotion7"], np.float32))
            int8.append(lite(view))
    p_served = np.mean(served, axis=0).argmax(1)
    p_int8 = np.mean(int8, axis=0).argmax(1)
    print(
        f"ensemble 7-class accuracy on the validation part: served {np.mean(p_served == y):.4f}, int8 "
        f"{np.mean(p_int8 == y):.4f}; same answer on {np.mean(p_served == p_int8):.1%} of faces "
        "(argmax before calibration)"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
