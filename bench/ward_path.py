"""Faces as the worker sees them: each FER face pasted into a generated ward scene (``detection_scenes``), found by
the configured detector in the scene's bed zones and cut by the worker's crop rule (``crop_face``: margin 0.15, eye
line levelled).  Used by ``bench_alert_rules.py --through-ward``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from areya.detectors import FaceDetector, crop_face
from bench import detection_scenes as ds


class Zone:
    def __init__(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1


def ward_crops(
    faces: Sequence[np.ndarray], detector: FaceDetector, rng: np.random.Generator
) -> list[np.ndarray | None]:
    """Per face: the worker's crop of it in a scene of its own (the first of its copies the detector finds at
    IoU >= 0.5), or None when the detector finds none of them."""
    out: list[np.ndarray | None] = []
    for face in faces:
        scene = ds.make_scene(rng, [face])
        found = detector.detect_in_zones(scene.image, [Zone(*z) for z in scene.zones])
        crop = None
        for truth in scene.faces:
            best = max(found, key=lambda d, t=truth: d.iou(t.box), default=None)
            if best is not None and best.iou(truth.box) >= 0.5:
                crop = crop_face(scene.image, best)
                break
        out.append(crop)
    return out


def detector_for_bench() -> Any:
    from areya.config import Settings
    from areya.detectors import detector_from_settings

    return detector_from_settings(Settings())
