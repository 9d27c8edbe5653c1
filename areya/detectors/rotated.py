"""A detector that runs another on the frame turned by several angles (the ``rotations`` option; the turning itself
is :mod:`areya.detectors.rotation`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from areya.detectors.base import FaceDetector
from areya.detectors.boxes import FaceBox, validate_frame
from areya.detectors.merge import merge_faces
from areya.detectors.rotation import box_from_rotated, normalize_angle, rotate_frame


class RotatedPasses(FaceDetector):
    """Runs ``inner`` on the frame turned by each angle of ``rotations`` and merges the faces (frame pixels).

    Other attributes (``tiles``, ``min_score``...) are read from the wrapped detector, ``inner``.
    """

    def __init__(self, inner: FaceDetector, rotations: Sequence[int], merge_iou: float = 0.3) -> None:
        if not rotations:
            raise ValueError("rotations must name at least one angle")
        self.inner = inner
        self.rotations = tuple(dict.fromkeys(normalize_angle(a) for a in rotations))
        self.merge_iou = merge_iou
        self.name = inner.name

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        frame = validate_frame(frame_bgr)
        h, w = frame.shape[:2]
        faces: list[FaceBox] = []
        for angle in self.rotations:
            turned, matrix = rotate_frame(frame, angle)
            found = self.inner.detect(turned)
            faces.extend(f.clip(w, h) if angle == 0 else box_from_rotated(f, matrix, angle).clip(w, h) for f in found)
        return merge_faces(faces, self.merge_iou) if len(self.rotations) > 1 else faces

    def detect_batch(self, frames: Sequence[np.ndarray] | Iterable[np.ndarray]) -> list[list[FaceBox]]:
        return [self.detect(f) for f in frames]

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)
