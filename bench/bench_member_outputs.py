"""Ensemble and cascade choices on the validation part, from each member's cached int8 outputs.

Each candidate member (an ``X.int8.tflite`` file; ``NAME=PATH``) is run once on the validation part held out
from FER-2013's Training split, plain and mirrored; its raw outputs are cached in ``--cache``.  Then, without
running a network again:

* ``--subset a,b,c`` (repeatable): that ensemble, with and without mirror TTA: 7-class accuracy and macro-F1,
  the 4-class answer from the 7-class head (``seven``) and from the 4-class head (``head``), angry / sad recall.
* ``--greedy K``: forward selection of up to K members by 4-of-7 accuracy (TTA), printing each step.
* ``--cascade FIRST:REST --threshold t [...]``: the first stage's calibrated top 7-class probability decides;
  faces below ``t`` are answered by the full ensemble ``REST`` (TTA).  Prints accuracy and the share of faces
  escalated, and the cost in member passes per face (1 + share x passes of the second stage).

Selection only: never PublicTest.  Speed here is a count of member passes; measure the served model with
``bench/bench_vs_fer.py``.

    nice python -m bench.bench_member_outputs v4=models/areya-fer/model.int8.tflite ... --subset v4,v5b
    nice python -m bench.bench_member_outputs --quick [NAME=PATH ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from areya.emotion.calibration import apply_temperature, fit_temperature
from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.inference import prepare_crops
from areya.emotion.metrics import classification_report
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, FER_TO_AREYA4, four_of_seven
from bench import quick_subset
from bench.bench_validation import SHARED, SPLIT_SEED  # the same data and validation part as bench_validation.py

MODELS = Path(__file__).resolve().parents[1] / "models" / "areya-fer"
# the shipped model's int8 members, named by their file (v12: one, model.int8.tflite)
DEFAULT_MEMBERS = tuple(f"{p.name.removesuffix('.int8.tflite')}={p}" for p in sorted(MODELS.glob("*.int8.tflite")))


def member_outputs(path: Path, x: np.ndarray, cache: Path) -> dict[str, np.ndarray]:
    """Raw (uncalibrated) outputs of one int8 member on x and on x mirrored, cached by file size and mtime."""
    st = path.stat()
    key = cache / f"{path.parent.name}-{path.stem}-{st.st_size}-{int(st.st_mtime)}-{len(x)}.npz"
    if key.is_file():
        return dict(np.load(key))
    from areya.emotion.lite import LiteMember

    member = LiteMember(path)
    out: dict[str, np.ndarray] = {}
    t0 = time.process_time()
    for tag, data in (("", x), ("flip_", x[:, :, ::-1])):
        p4, p7 = [], []
        for s in range(0, len(data), 256):
            o = member.predict_on_batch(np.ascontiguousarray(data[s : s + 256]))
            p4.append(np.asarray(o["emotion4"], np.float32))
            p7.append(np.asarray(o["emotion7"], np.float32))
        out[tag + "p4"], out[tag + "p7"] = np.concatenate(p4), np.concatenate(p7)
    out["cpu_s_per_face"] = np.float64((time.process_time() - t0) / (2 * len(x)))
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(key, **out)
    return out


def ensemble(outs: Sequence[dict[str, np.ndarray]], tta: bool) -> tuple[np.ndarray, np.ndarray]:
    keys = [""] + (["flip_"] if tta else [])
    p4 = np.mean([o[k + "p4"] for o in outs for k in keys], axis=0)
    p7 = np.mean([o[k + "p7"] for o in outs for k in keys], axis=0)
    return p4, p7


def scores(p4: np.ndarray, p7: np.ndarray, y7: np.ndarray, in4: np.ndarray, y4: np.ndarray) -> dict[str, float]:
    r7 = classification_report(y7, p7, FER7_CLASSES)
    rs = classification_report(y4, four_of_seven(p7)[in4], AREYA4_CLASSES)
    rh = classification_report(y4, p4[in4], AREYA4_CLASSES)
    return {
        "acc7": r7.accuracy,
        "f1_7": r7.macro_f1,
        "acc4_seven": rs.accuracy,
        "acc4_head": rh.accuracy,
        "angry": rs.per_class["angry"]["recall"],
        "sad": rs.per_class["sad"]["recall"],
    }


def row(name: str, s: dict[str, float], extra: str = "") -> str:
    return (
        f"| {name} | {s['acc7']:.4f} | {s['f1_7']:.4f} | {s['acc4_seven']:.4f} | {s['acc4_head']:.4f} | "
        f"{s['angry']:.3f} | {s['sad']:.3f} |{extra}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", nargs="*", help="NAME=PATH of an X.int8.tflite member (--quick: the shipped ones)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    ap.add_argument("--cache", type=Path, default=Path("runs/member-outputs"))
    ap.add_argument("--subset", action="append", default=[])
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--cascade", action="append", default=[], help="FIRST:REST, each a comma list of names")
    ap.add_argument("--threshold", type=float, action="append", default=[])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 140 validation faces, a throwaway cache; by default the shipped members, their ensemble, "
        "--greedy 2 and a cascade of the first into all at 0.6",
    )
    args = ap.parse_args(argv)
    if not args.members:
        if not args.quick:
            ap.error("give at least one NAME=PATH member")
        args.members = list(DEFAULT_MEMBERS)
    cache = None
    if args.quick:
        names = [spec.partition("=")[0] for spec in args.members]
        args.subset = args.subset or [",".join(names)]
        args.greedy = args.greedy or 2
        args.cascade = args.cascade or [f"{names[0]}:{','.join(names)}"]
        args.threshold = args.threshold or [0.6]
        cache = tempfile.TemporaryDirectory(prefix="bench-member-outputs-")
        args.cache = Path(cache.name)
    if not (args.data / "train").is_dir():
        print(f"needs the FER-2013 tree with train/ at {args.data}", file=sys.stderr)
        return 2
    _, val = holdout_split(load_dataset(args.data, "train"), 0.1, args.split_seed)
    if args.quick:
        val = quick_subset(val, 140)
    x = prepare_crops(list(val.images))
    y7 = np.asarray(val.labels7)
    in4 = np.array([FER7_CLASSES[i] in FER_TO_AREYA4 for i in y7])
    y4 = np.array([AREYA4_CLASSES.index(FER_TO_AREYA4[FER7_CLASSES[i]]) for i in y7[in4]])
    outs: dict[str, dict[str, np.ndarray]] = {}
    for spec in args.members:
        name, _, path = spec.partition("=")
        outs[name] = member_outputs(Path(path), x, args.cache)
        print(f"{name}: {1 / float(outs[name]['cpu_s_per_face']):.0f} faces/CPU-s per pass ({path})", flush=True)
    print(f"validation part: {len(y7)} faces ({int(in4.sum())} in the four classes)")
    print("| members | 7-class acc | 7-class macro-F1 | 4-class (seven) | 4-class (head) | angry | sad | passes |")
    print("|---|---|---|---|---|---|---|---|")
    for subset in args.subset:
        names = subset.split(",")
        for tta in (False, True):
            s = scores(*ensemble([outs[n] for n in names], tta), y7, in4, y4)
            print(row(f"{subset}{' TTA' if tta else ''}", s, f" {len(names) * (2 if tta else 1)} |"))
    if args.greedy:
        chosen: list[str] = []
        for _ in range(min(args.greedy, len(outs))):

            def gain(n: str) -> float:
                return scores(*ensemble([outs[m] for m in [*chosen, n]], True), y7, in4, y4)["acc4_seven"]

            best = max((n for n in outs if n not in chosen), key=gain)
            chosen.append(best)
            s = scores(*ensemble([outs[m] for m in chosen], True), y7, in4, y4)
            print(row("greedy " + ",".join(chosen) + " TTA", s, f" {2 * len(chosen)} |"))
    for spec in args.cascade:
        first, _, rest = spec.partition(":")
        f_names, r_names = first.split(","), rest.split(",")
        f4, f7 = ensemble([outs[n] for n in f_names], False)
        r4, r7 = ensemble([outs[n] for n in r_names], True)
        t7 = fit_temperature(f7, y7)
        conf = apply_temperature(f7, t7).max(axis=1)
        for th in args.threshold:
            up = conf < th
            p4 = np.where(up[:, None], r4, f4)
            p7 = np.where(up[:, None], r7, f7)
            s = scores(p4, p7, y7, in4, y4)
            passes = len(f_names) + up.mean() * 2 * len(r_names)
            print(
                row(f"cascade {first} -> {rest} TTA below {th:.2f} ({up.mean():.1%} escalated)", s, f" {passes:.2f} |")
            )
    if cache is not None:
        cache.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
