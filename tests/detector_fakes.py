"""Fake face detectors for the rotation and re-detection tests: white blobs on black stand in for faces."""

from __future__ import annotations

import cv2
import numpy as np

from areya.detectors import FaceBox, FaceDetector


def blob_boxes(image: np.ndarray) -> list[FaceBox]:
    """The tight box of every white blob (pixels > 128) of a gray or BGR image."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    n, _, stats, _ = cv2.connectedComponentsWithStats((gray > 128).astype(np.uint8))
    return [FaceBox(int(x), int(y), int(w), int(h), 0.9) for x, y, w, h, _ in stats[1:n]]


class WideBlobs(FaceDetector):
    """A fake backend that only 'recognises' upright faces: white blobs wider than tall, boxed tightly."""

    name = "wide"

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        return [b for b in blob_boxes(frame_bgr) if b.w > b.h]
