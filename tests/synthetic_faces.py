"""Tiny generated face-like images in FER layout, for tests that must not need ../shared."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from areya.emotion.schemes import FER7_CLASSES

# the smallest training config that trains in seconds on a face tree of write_face_tree(per_class=6)
TINY_TRAINING = dict(
    widths=[8, 16],
    convs_per_stage=[1, 1],
    batch_size=16,
    epochs=1,
    seed=7,
    name="tiny",
    standardize=True,
    pooling="flatten",
    val_fraction=0.15,  # one face per class held out
    # float32 on every CPU: on one with bfloat16 units "auto" would train in mixed_bfloat16, and the tests'
    # tolerances (the same answers under JAX and TensorFlow, averaged weights) are float32's
    mixed_precision=False,
)


def synthetic_face(label7: int, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 grayscale 'face' whose mouth/brow shape depends on the class, plus noise."""
    img = np.full((48, 48), 40, np.uint8)
    cv2.ellipse(img, (24, 24), (18, 22), 0, 0, 360, 170, -1)
    for x in (17, 31):
        cv2.circle(img, (x, 19), 3, 30, -1)
    curve = (label7 - 3) * 3  # class-dependent mouth curvature
    pts = np.array([[14, 33], [24, 33 + curve], [34, 33]], np.int32)
    cv2.polylines(img, [pts], False, 20, 2)
    cv2.line(img, (12, 12 + label7 % 3), (22, 13), 25, 2)
    noise = rng.normal(0, 12, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def write_face_tree(root: Path, per_class: int = 4, seed: int = 0, classes=FER7_CLASSES) -> dict[str, int]:
    """Write ``root/<class>/<i>.png``; returns images written per class."""
    rng = np.random.default_rng(seed)
    counts = {}
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{name}_{i}.png"), synthetic_face(FER7_CLASSES.index(name), rng))
        counts[name] = per_class
    return counts
