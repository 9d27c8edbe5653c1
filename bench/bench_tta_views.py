"""Does test-time augmentation beyond the mirror help?  Shifted and zoomed views on the validation part.

Each int8 member (``NAME=PATH``; default the shipped model's) is run on the validation part held out from
FER-2013's Training split in 22 views: plain and mirrored, each also shifted by 2 px (4 directions), by 3 px
diagonally (4) and zoomed in / out (1.08, 0.94; warped as training augments, reflected borders).  Then, without
running a network again, the accuracy of averaging the views of each set: the mirror alone (as served), mirror +
the 2 px shifts (10 views), + the diagonal ones (10), + zoom (6), all 22, for each member alone and for the
ensemble of all.  Selection data only: never PublicTest.  The passes per face grow with the views, so only a clear
gain would pay for itself.

    nice python -m bench.bench_tta_views [NAME=PATH ...] [--limit N] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, FER_TO_AREYA4
from bench import quick_subset
from bench.bench_member_outputs import DEFAULT_MEMBERS, scores  # the same figures as bench_member_outputs.py
from bench.bench_validation import SHARED, SPLIT_SEED

SHIFTS = ((2, 0), (-2, 0), (0, 2), (0, -2))
DIAGONALS = ((3, 3), (-3, -3), (3, -3), (-3, 3))
ZOOMS = (1.08, 0.94)


def view(faces: np.ndarray, dx: int = 0, dy: int = 0, scale: float = 1.0, mirror: bool = False) -> np.ndarray:
    """(N, 48, 48) uint8 -> the same faces mirrored / shifted / zoomed, (N, 48, 48, 1) float32."""
    out = faces[:, :, ::-1] if mirror else faces
    if dx or dy or scale != 1.0:
        h, w = faces.shape[1:]
        matrix = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), 0.0, scale)
        matrix[0, 2] += dx
        matrix[1, 2] += dy
        out = np.stack(
            [
                cv2.warpAffine(
                    np.ascontiguousarray(f), matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
                )
                for f in out
            ]
        )
    return np.ascontiguousarray(out, dtype=np.float32)[..., None]


def view_keys() -> dict[str, tuple[int, int, float]]:
    keys = {"plain": (0, 0, 1.0)}
    keys.update({f"shift{dx:+d}{dy:+d}": (dx, dy, 1.0) for dx, dy in (*SHIFTS, *DIAGONALS)})
    keys.update({f"zoom{s}": (0, 0, s) for s in ZOOMS})
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", nargs="*", default=list(DEFAULT_MEMBERS), help="NAME=PATH of an X.int8.tflite member")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument(
        "--limit",
        type=int,
        default=0,
        help="only N of the validation faces, chosen at random with seed 0 (a quick check)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 56 validation faces, evenly spaced")
    args = ap.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"needs the FER-2013 tree with train/ at {args.data}", file=sys.stderr)
        return 2
    from areya.emotion.lite import LiteMember

    _, val = holdout_split(load_dataset(args.data, "train"), 0.1, SPLIT_SEED)
    if args.quick and not args.limit:
        val = quick_subset(val, 56)
    faces, y7 = val.images, np.asarray(val.labels7)
    if 0 < args.limit < len(y7):
        pick = np.sort(np.random.default_rng(0).choice(len(y7), args.limit, replace=False))
        faces, y7 = faces[pick], y7[pick]
    in4 = np.array([FER7_CLASSES[i] in FER_TO_AREYA4 for i in y7])
    y4 = np.array([AREYA4_CLASSES.index(FER_TO_AREYA4[FER7_CLASSES[i]]) for i in y7[in4]])
    outs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    names = []
    for spec in args.members:
        name, _, path = spec.partition("=")
        names.append(name)
        member = LiteMember(path)
        for mirror in (False, True):
            for key, (dx, dy, scale) in view_keys().items():
                x = view(faces, dx, dy, scale, mirror)
                p4, p7 = [], []
                for s in range(0, len(x), 256):
                    o = member.predict_on_batch(x[s : s + 256])
                    p4.append(np.asarray(o["emotion4"], np.float32))
                    p7.append(np.asarray(o["emotion7"], np.float32))
                outs[(name, ("mirror-" if mirror else "") + key)] = (np.concatenate(p4), np.concatenate(p7))
        print(f"{name}: 22 views of {len(faces)} faces ({path})", flush=True)

    both = ["plain", "mirror-plain"]

    def with_mirror(keys: list[str]) -> list[str]:
        return [*keys, *("mirror-" + k for k in keys)]

    sets = {
        "mirror (served)": both,
        "mirror + 2 px shifts": both + with_mirror([f"shift{dx:+d}{dy:+d}" for dx, dy in SHIFTS]),
        "mirror + 3 px diagonal shifts": both + with_mirror([f"shift{dx:+d}{dy:+d}" for dx, dy in DIAGONALS]),
        "mirror + zoom": both + with_mirror([f"zoom{s}" for s in ZOOMS]),
        "all": with_mirror(list(view_keys())),
    }
    print(f"validation part: {len(y7)} faces ({int(in4.sum())} in the four classes)")
    print(
        "| members | views | passes per face | 7-class acc | 7-class macro-F1 | 4-class (seven) | 4-class (head) "
        "| angry | sad |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for group in [[n] for n in names] + ([names] if len(names) > 1 else []):
        for label, keys in sets.items():
            p4 = np.mean([outs[(n, k)][0] for n in group for k in keys], axis=0)
            p7 = np.mean([outs[(n, k)][1] for n in group for k in keys], axis=0)
            s = scores(p4, p7, y7, in4, y4)
            print(
                f"| {'+'.join(group)} | {label} | {len(group) * len(keys)} | {s['acc7']:.4f} | {s['f1_7']:.4f} | "
                f"{s['acc4_seven']:.4f} | {s['acc4_head']:.4f} | {s['angry']:.3f} | {s['sad']:.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
