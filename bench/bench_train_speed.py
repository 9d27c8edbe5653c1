"""Training and inference speed of a model config's network on this machine, on random faces.

Builds the network of ``--config`` (default: the shipped v8 member's), compiles it as ``areya train`` does (the
config's optimizer and losses) and times ``model.fit`` over ``--batches`` batches after one warm-up fit, then
``model.predict`` at batch 256.  The Keras backend is the process's (``KERAS_BACKEND=jax python -m
bench.bench_train_speed`` for JAX); ``--precision`` picks the dtype policy as ``areya train --precision`` does.
Figures depend on the CPU and on what else runs (print ``uptime`` beside them).  Not part of the test suite.

    python -m bench.bench_train_speed [--config models/areya-fer/config.toml] [--precision auto|mixed|float32]
                                      [--batches 12] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from areya.emotion.precision import MODES, accelerator_present, choose_policy, cpu_has_bf16
from areya.emotion.train_config import TrainConfig


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("models/areya-fer/config.toml"))
    ap.add_argument("--precision", choices=MODES, default="auto")
    ap.add_argument("--batches", type=int, default=12, help="timed training batches")
    ap.add_argument("--quick", action="store_true", help="smoke run: one warm-up and one timed batch of 16")
    args = ap.parse_args(argv)
    if args.quick:
        args.batches = 1

    import keras

    from areya.emotion.network import OUTPUT4, OUTPUT7, build_network
    from areya.emotion.train import compile_for_training

    cfg = TrainConfig.from_file(args.config)
    if args.quick:
        cfg = replace(cfg, batch_size=16)
    choice = choose_policy(
        cfg.mixed_precision, args.precision, accelerator=accelerator_present(), cpu_bf16=cpu_has_bf16()
    )
    keras.mixed_precision.set_global_policy(choice.policy)
    keras.utils.set_random_seed(cfg.seed)
    model = build_network(cfg)
    compile_for_training(model, cfg, args.batches)
    n = cfg.batch_size * args.batches
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, 48, 48, 1)).astype(np.float32)
    y = {
        OUTPUT7: np.eye(7, dtype=np.float32)[rng.integers(0, 7, n)],
        OUTPUT4: np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)],
    }
    warm = (1 if args.quick else 2) * cfg.batch_size
    model.fit(x[:warm], {k: v[:warm] for k, v in y.items()}, batch_size=cfg.batch_size, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=1, verbose=0)
    train_rate = n / (time.perf_counter() - t0)
    model.predict(x[:256], batch_size=256, verbose=0)
    t0 = time.perf_counter()
    model.predict(x, batch_size=256, verbose=0)
    predict_rate = n / (time.perf_counter() - t0)
    print(
        f"{args.config} ({model.count_params():,} parameters): backend {keras.backend.backend()}, dtype policy "
        f"{choice.policy}, batch {cfg.batch_size}: train {train_rate:.0f} images/s, predict {predict_rate:.0f} "
        f"faces/s (Keras, batch 256)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
