"""Cut face crops for the emotion classifier: the one crop rule shared by ``areya predict`` and the worker."""

from __future__ import annotations

import numpy as np

from areya.detectors.boxes import FaceBox

DEFAULT_MARGIN = 0.15  # FER-2013 faces are tight crops: the detector box enlarged by about 10-20 %


def square_region(box: FaceBox, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """``(x, y, side)`` of the square centred on ``box``, side = longest box side * (1 + margin)."""
    if margin < 0 or margin > 2:
        raise ValueError(f"margin must be between 0 and 2, got {margin}")
    if box.w <= 0 or box.h <= 0:
        raise ValueError(f"cannot crop an empty box {box}")
    cx, cy = box.center()
    side = max(1, round(max(box.w, box.h) * (1.0 + margin)))
    return round(cx - side / 2.0), round(cy - side / 2.0), side


def crop_face(
    frame: np.ndarray, box: FaceBox, margin: float = DEFAULT_MARGIN, *, align: float | None = 0.0
) -> np.ndarray:
    """Square crop around ``box`` enlarged by ``margin``; parts outside the frame repeat its edge pixels.

    A rolled face comes out upright: turned by the roll its eyes say (:meth:`FaceBox.eye_roll`) when the
    detector gave eyes and that roll is at least ``align`` degrees (``align`` None: never use the eyes), else by
    the ``roll`` of the rotated pass that found it.  Works for gray (H, W) and colour (H, W, C) frames; returns
    a new array, never a view of ``frame``.
    """
    eye_roll = box.eye_roll() if align is not None else None
    if eye_roll is not None:
        roll = eye_roll if abs(eye_roll) >= align else 0.0
        box = FaceBox(box.x, box.y, box.w, box.h, box.score, roll)
    if box.roll % 360:
        return _upright_crop(frame, box, margin)
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        raise ValueError(f"frame must be a non-empty (H, W) or (H, W, C) array, got {getattr(frame, 'shape', frame)}")
    h, w = frame.shape[:2]
    x, y, side = square_region(box, margin)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} lies outside the {w}x{h} frame")
    inside = frame[y0:y1, x0:x1]
    pads = (y0 - y, y + side - y1, x0 - x, x + side - x1)
    if not any(pads):
        return inside.copy()
    import cv2

    return cv2.copyMakeBorder(inside, *pads, borderType=cv2.BORDER_REPLICATE)


def _upright_crop(frame: np.ndarray, box: FaceBox, margin: float) -> np.ndarray:
    """The square crop of a rolled face, turned ``box.roll`` degrees clockwise so the face is upright."""
    import cv2

    _, _, side = square_region(box, margin)
    outer = FaceBox(*box.as_tuple(), box.score)  # a square holding the crop at any angle: side * sqrt(2)
    big = crop_face(frame, outer, margin=min(2.0, (1.0 + margin) * 1.42 - 1.0))
    c = big.shape[0] / 2.0
    turned = cv2.warpAffine(
        big,
        cv2.getRotationMatrix2D((c, c), -box.roll, 1.0),
        (big.shape[1], big.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    x0 = max(0, round(c - side / 2.0))
    return turned[x0 : x0 + side, x0 : x0 + side].copy()
