"""Merge faces found in several passes over one frame (zone crops, rotated views, the whole frame)."""

from __future__ import annotations

from collections.abc import Iterable

from areya.detectors.boxes import FaceBox


def overlap_of_smaller(a: FaceBox, b: FaceBox) -> float:
    """Intersection area over the smaller box's area (1.0: one box lies inside the other)."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    smaller = min(a.area, b.area)
    return ix * iy / smaller if smaller > 0 else 0.0


def merge_faces(faces: Iterable[FaceBox], iou: float = 0.3, inside: float = 0.6) -> list[FaceBox]:
    """Greedy suppression, best score first: a face is dropped when it overlaps a kept one by more than ``iou``
    (IoU) or lies mostly (``inside`` of the smaller box) within it: a face cut by a crop edge gives a partial box
    that IoU alone does not catch.  Returns the kept faces, best score first."""
    kept: list[FaceBox] = []
    for face in sorted(faces, key=lambda f: (-f.score, -f.area)):  # a tie: the whole face before a cut one
        if face.w <= 0 or face.h <= 0:
            continue
        if any(face.iou(k) > iou or overlap_of_smaller(face, k) > inside for k in kept):
            continue
        kept.append(face)
    return kept
