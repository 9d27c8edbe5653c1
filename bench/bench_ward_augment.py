"""What the ward-robust augmentation (``ward_*`` settings) costs: images/s of the augmentation alone and of training
steps fed by ``areya train``'s batches, with the config's ward settings and with them off.

Builds ``--config``'s network (default: models/areya-ferplus's), compiles it as ``areya train`` does and fits it on
``make_training_batches`` batches of faces (``--data``: the first faces of a class-folder tree, evenly over its
classes; default random faces), alternating off / on ``--rounds`` times so a busy CPU weighs on both alike.  The
dtype policy is ``areya train --precision``'s.  Not part of the test suite.

    python -m bench.bench_ward_augment [--config models/areya-ferplus/config.toml] [--data DIR] [--batches 8]
                                       [--rounds 2] [--precision auto|mixed|float32] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from areya.emotion.precision import MODES, accelerator_present, choose_policy, cpu_has_bf16
from areya.emotion.train_config import WARD_AUGMENTATIONS, TrainConfig


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("models/areya-ferplus/config.toml"))
    ap.add_argument("--data", type=Path, default=None, help="class-folder tree of faces [random faces]")
    ap.add_argument("--batches", type=int, default=8, help="timed training batches per measurement")
    ap.add_argument("--rounds", type=int, default=2, help="off / on measurements, alternating")
    ap.add_argument("--precision", choices=MODES, default="auto")
    ap.add_argument("--quick", action="store_true", help="smoke run: one round of one batch of 16")
    args = ap.parse_args(argv)

    import keras

    from areya.emotion.augment import augment_faces, make_training_batches
    from areya.emotion.network import build_network
    from areya.emotion.train import compile_for_training, training_targets

    on = TrainConfig.from_file(args.config)
    if args.quick:
        on = replace(on, batch_size=16)
        args.batches, args.rounds = 1, 1
    if not any(getattr(on, name) > 0 for name in WARD_AUGMENTATIONS):
        on = replace(on, **{name: 0.3 for name in WARD_AUGMENTATIONS})
        print(f"{args.config} has no ward augmentation: measuring each at probability 0.3")
    off = replace(on, **{name: 0.0 for name in WARD_AUGMENTATIONS})
    n = on.batch_size * args.batches
    if args.data is not None:
        from areya.emotion.dataset import load_dataset

        data = load_dataset(args.data)
        pick = np.linspace(0, len(data) - 1, n).astype(int)
        images, labels7 = data.images[pick], data.labels7[pick]
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
        labels7 = rng.integers(0, 7, n)

    def augment_rate(cfg: TrainConfig) -> float:
        t0 = time.perf_counter()
        for b in range(args.batches):
            augment_faces(images[b * cfg.batch_size : (b + 1) * cfg.batch_size], cfg, np.random.default_rng(b))
        return n / (time.perf_counter() - t0)

    choice = choose_policy(
        on.mixed_precision, args.precision, accelerator=accelerator_present(), cpu_bf16=cpu_has_bf16()
    )
    keras.mixed_precision.set_global_policy(choice.policy)
    keras.utils.set_random_seed(on.seed)
    model = build_network(on)
    compile_for_training(model, on, args.batches)
    targets = training_targets(labels7, on.label_smoothing)
    warm, _ = make_training_batches(images[: on.batch_size], targets, off)
    model.fit(warm, epochs=1, verbose=0)

    def train_rate(cfg: TrainConfig) -> float:
        batches, _ = make_training_batches(images, targets, cfg)
        t0 = time.perf_counter()
        model.fit(batches, epochs=1, verbose=0)
        return n / (time.perf_counter() - t0)

    rates: dict[str, dict[str, list[float]]] = {"off": {"augment": [], "train": []}, "on": {"augment": [], "train": []}}
    for _ in range(args.rounds):
        for name, cfg in (("off", off), ("on", on)):
            rates[name]["augment"].append(augment_rate(cfg))
            rates[name]["train"].append(train_rate(cfg))
    ward = ", ".join(f"{k} {getattr(on, k)}" for k in WARD_AUGMENTATIONS)
    print(
        f"{args.config}: backend {keras.backend.backend()}, dtype policy {choice.policy}, batch {on.batch_size}, "
        f"{n} {'faces of ' + str(args.data) if args.data else 'random faces'} per measurement, {args.rounds} rounds"
    )
    print(f"ward settings: {ward}")
    for name in ("off", "on"):
        r = rates[name]
        print(
            f"ward augmentation {name:>3}: augmentation alone {np.mean(r['augment']):,.0f} images/s, "
            f"training {np.mean(r['train']):.1f} images/s (rounds: {', '.join(f'{x:.1f}' for x in r['train'])})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
