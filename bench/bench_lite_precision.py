"""One served member's TensorFlow Lite speed by weight precision: float32, float16 weights, and the served int8.

Rebuilds the member in float32 from its training config (as ``areya models quantize`` does), converts it plainly
and with float16 weights, and times each against the member's shipped ``X.int8.tflite``: faces per CPU-second at
batch 256 on one thread, on random faces, with the 7-class arg-max agreement with float32.  A measurement for
deciding the runtime (the int8 file is what the worker serves); not part of the test suite.  Figures depend on the
CPU and on what else runs (print ``uptime`` beside them).

    python bench/bench_lite_precision.py [--model models/areya-fer] [--member model.keras]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from areya.emotion.inference import Ensemble  # noqa: E402
from areya.emotion.lite import LiteMember  # noqa: E402

BATCH = 256


def convert(folder: Path, member: str, out_dir: Path) -> dict[str, Path]:
    """The member as float32 and float16-weight TensorFlow Lite files in ``out_dir``."""
    import keras
    import tensorflow as tf

    from areya.emotion.network import build_network
    from areya.emotion.train_config import TrainConfig

    cfg = TrainConfig.from_file(Ensemble.member_config(folder, member))
    served = keras.models.load_model(folder / member, compile=False)
    keras.mixed_precision.set_global_policy("float32")
    plain = build_network(cfg)
    plain.set_weights(served.get_weights())
    saved = out_dir / "saved"
    plain.export(str(saved), format="tf_saved_model", verbose=False)
    files = {}
    for name in ("float32", "float16"):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if name == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        files[name] = out_dir / f"{name}.tflite"
        files[name].write_bytes(converter.convert())
    return files


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/areya-fer"))
    ap.add_argument("--member", default="model.keras")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    int8 = Ensemble.member_int8(args.model, args.member)
    if not int8.is_file():
        print(f"{int8} not found (run `areya models quantize {args.model}` first)", file=sys.stderr)
        return 2
    x = np.random.default_rng(0).uniform(0, 255, (BATCH, 48, 48, 1)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        files = convert(args.model, args.member, Path(tmp))
        files["int8 (served)"] = int8
        answers = {}
        print(f"{args.model / args.member}: one thread, batch {BATCH}, random faces")
        print("| weights | file bytes | faces/CPU-s | 7-class arg-max as float32 |")
        print("|---|---|---|---|")
        for name, path in files.items():
            member = LiteMember(path, num_threads=1)
            answers[name] = np.asarray(member.predict_on_batch(x)["emotion7"]).argmax(1)  # also the warm-up
            t0 = time.process_time()
            for _ in range(args.repeats):
                member.predict_on_batch(x)
            rate = args.repeats * BATCH / (time.process_time() - t0)
            same = float(np.mean(answers[name] == answers["float32"]))
            print(f"| {name} | {path.stat().st_size:,} | {rate:.0f} | {same:.1%} |")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
