"""Frames per second of each face detection backend on 640x480 and 1280x720 frames with 1-3 faces.

Frames are generated: the face of ``skimage.data.astronaut()`` (public domain) pasted 1, 2 or 3 times into a
plain canvas, faces about 12 % of the frame width.  One detector instance, one thread of Python; the TFLite
interpreter's own thread count is ``--threads``.  Besides wall-clock frames/s it prints frames per CPU-second of
this process, which stays meaningful on a busy machine.

    nice -n 15 python -m bench.bench_detectors [--seconds 3] [--threads 1] [--only blazeface,haar] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SIZES = [(640, 480), (1280, 720)]
HEAD_REGION = (100, 0, 250, 260)  # x, y, w, h of the astronaut's head in skimage.data.astronaut()
FACE_IN_HEAD = 100  # face width in that region, pixels


@dataclass
class Variant:
    label: str
    name: str
    opts: dict[str, Any] = field(default_factory=dict)


VARIANTS = [
    Variant("blazeface (full range, default)", "blazeface"),
    Variant("blazeface-full-sparse", "blazeface-full-sparse"),
    Variant("blazeface-short", "blazeface-short"),
    Variant("blazeface-short tiles=2", "blazeface-short", {"tiles": 2}),
    Variant("blazeface tiles=2", "blazeface", {"tiles": 2}),
    Variant("haar", "haar"),
]


def make_frames(width: int, height: int) -> list[tuple[np.ndarray, int]]:
    """Frames with 1, 2 and 3 faces side by side, and how many faces each holds."""
    import cv2
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, w, h = HEAD_REGION
    scale = 0.12 * width / FACE_IN_HEAD
    head = cv2.resize(astronaut[y : y + h, x : x + w], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    hh, hw = head.shape[:2]
    frames = []
    for n in (1, 2, 3):
        canvas = np.full((height, width, 3), (95, 105, 115), np.uint8)
        for i in range(n):
            px = int((i + 0.5) * width / n - hw / 2)
            py = int((height - hh) * (0.2 + 0.3 * i))
            canvas[py : py + hh, px : px + hw] = head if i % 2 == 0 else cv2.flip(head, 1)
        frames.append((canvas, n))
    return frames


def measure(detector: Any, frames: list[tuple[np.ndarray, int]], seconds: float) -> tuple[float, float, float]:
    """(frames per wall-clock second, frames per CPU second of this process, share of faces found)."""
    expected = sum(n for _, n in frames)
    found = sum(min(len(detector.detect(f)), n) for f, n in frames)  # also the warm-up
    count = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for f, _ in frames:
            detector.detect(f)
        count += len(frames)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return count / wall, count / max(cpu, 1e-9), found / expected


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per backend and size")
    ap.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    ap.add_argument("--only", default=None, help="comma-separated detector names to measure")
    ap.add_argument("--quick", action="store_true", help="smoke run: every backend and size, 0.05 s each")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds = 0.05
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from areya.detectors import create_detector

    wanted = set(args.only.split(",")) if args.only else None
    frames = {size: make_frames(*size) for size in SIZES}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; threads={args.threads}")
    head = f"{'backend':<34}{'frame':>10}{'frames/s':>10}{'ms/frame':>10}{'frames/cpu-s':>14}{'faces found':>13}"
    print(head)
    print("-" * len(head))
    for v in VARIANTS:
        if wanted and v.name not in wanted:
            continue
        opts = dict(v.opts)
        if v.name.startswith("blazeface"):
            opts["num_threads"] = args.threads
        det = create_detector(v.name, **opts)
        for (w, h), fr in frames.items():
            fps, cpu_fps, share = measure(det, fr, args.seconds)
            print(f"{v.label:<34}{f'{w}x{h}':>10}{fps:>10.0f}{1000 / fps:>10.2f}{cpu_fps:>14.0f}{share:>12.0%}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("frames/s: wall clock (depends on what else runs); frames/cpu-s: per CPU-second this process used, all")
    print("its threads (close to what one idle core gives with --threads 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
