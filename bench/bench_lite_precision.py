"""One served member's TensorFlow Lite speed by weight precision: float32, float16 weights, and the served int8.

Rebuilds the member in float32 from its training config (as ``areya models quantize`` does), converts it plainly
and with float16 weights, and times each against the member's shipped ``X.int8.tflite``: faces per CPU-second at
batch 256 on one thread, on random faces, with the 7-class arg-max agreement with float32.  A measurement for
deciding the runtime (the int8 file is what the worker serves); not part of the test suite.  Figures depend on the
CPU and on what else runs (print ``uptime`` beside them).

    python -m bench.bench_lite_precision [--model models/areya-fer] [--member model.keras] [--quick]
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

from areya.emotion.inference import Ensemble
from areya.emotion.lite import LiteMember, member_tflite
from bench.bench_int8 import BATCH, faces_per_cpu_second  # the same timing as the int8 bench


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/areya-fer"))
    ap.add_argument("--member", default="model.keras")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smoke run: one timed batch per precision")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 1
    int8 = Ensemble.member_int8(args.model, args.member)
    if not int8.is_file():
        print(f"{int8} not found (run `areya models quantize {args.model}` first)", file=sys.stderr)
        return 2
    x = np.random.default_rng(0).uniform(0, 255, (BATCH, 48, 48, 1)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for weights in ("float32", "float16"):
            files[weights] = Path(tmp) / f"{weights}.tflite"
            files[weights].write_bytes(member_tflite(args.model, args.member, weights))
        files["int8 (served)"] = int8
        answers = {}
        print(f"{args.model / args.member}: one thread, batch {BATCH}, random faces")
        print("| weights | file bytes | faces/CPU-s | 7-class arg-max as float32 |")
        print("|---|---|---|---|")
        for name, path in files.items():
            member = LiteMember(path, num_threads=1)
            answers[name] = np.asarray(member.predict_on_batch(x)["emotion7"]).argmax(1)
            rate = faces_per_cpu_second(lambda m=member: m.predict_on_batch(x), args.repeats)
            same = float(np.mean(answers[name] == answers["float32"]))
            print(f"| {name} | {path.stat().st_size:,} | {rate:.0f} | {same:.1%} |")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
