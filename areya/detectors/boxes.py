"""What every face detector returns and accepts: :class:`FaceBox`, frame validation, and :class:`FaceFinder`, the one
method of a detector that the zone scan and the rotated looks call (:class:`areya.detectors.base.FaceDetector` is
one).  Below every other detectors module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixels of the frame it was found in: top-left corner, size, detector score.

    ``roll``: degrees to turn the face clockwise to make it upright (non-zero when it was found in a rotated
    pass, see :mod:`areya.detectors.rotation`); the box is the face's own size around its centre.
    ``eyes``: the eye centres in frame pixels, ``(right_x, right_y, left_x, left_y)`` (the person's right eye,
    on the image's left in an upright face), when the detector gives landmarks (BlazeFace does, Haar does not).
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    roll: float = 0.0
    eyes: tuple[float, float, float, float] | None = None

    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    @property
    def area(self) -> int:
        return max(self.w, 0) * max(self.h, 0)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def normalized(self, frame_w: int, frame_h: int) -> tuple[float, float, float, float]:
        """``(x, y, w, h)`` as fractions of the frame size, clipped to the frame, each in [0, 1]."""
        if frame_w <= 0 or frame_h <= 0:
            raise ValueError(f"frame size must be positive, got {frame_w}x{frame_h}")
        b = self.clip(frame_w, frame_h)
        return (b.x / frame_w, b.y / frame_h, b.w / frame_w, b.h / frame_h)

    def clip(self, frame_w: int, frame_h: int) -> FaceBox:
        """The part of this box inside a ``frame_w`` x ``frame_h`` frame (zero size if it lies outside)."""
        x0 = min(max(self.x, 0), frame_w)
        y0 = min(max(self.y, 0), frame_h)
        x1 = min(max(self.x + self.w, 0), frame_w)
        y1 = min(max(self.y + self.h, 0), frame_h)
        return FaceBox(x0, y0, x1 - x0, y1 - y0, self.score, self.roll, self.eyes)

    def eye_roll(self, max_offset: float = 45.0) -> float | None:
        """The roll the eyes say (degrees clockwise that make the eye line level, right eye on the left), or None
        when there are no eyes or they are implausible for this box: eye distance outside 15-80 % of the box
        side, or more than ``max_offset`` degrees from the roll of the pass that found the face."""
        if self.eyes is None:
            return None
        rx, ry, lx, ly = self.eyes
        dist = math.hypot(lx - rx, ly - ry)
        side = max(self.w, self.h)
        if side <= 0 or not 0.15 * side <= dist <= 0.8 * side:
            return None
        roll = math.degrees(math.atan2(ry - ly, lx - rx))
        offset = (roll - self.roll + 180.0) % 360.0 - 180.0
        return roll if abs(offset) <= max_offset else None

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with ``other`` (0 when either box is empty)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def validate_frame(frame: object) -> np.ndarray:
    """Check a frame and return it as a BGR (H, W, 3) uint8 array.

    Accepted: uint8 arrays shaped (H, W) or (H, W, 1) (gray), (H, W, 3) (BGR) or (H, W, 4) (BGRA).
    Anything else raises ``ValueError`` saying what was wrong.
    """
    if frame is None:
        raise ValueError("frame is None (image could not be read?)")
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise ValueError(f"frame is empty (shape {frame.shape})")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got dtype {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        import cv2

        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"frame must be (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA, got shape {frame.shape}")
    if frame.shape[2] == 4:
        import cv2

        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def validate_gray(frame: object) -> np.ndarray:
    """Like :func:`validate_frame` but returns a gray (H, W) uint8 array (no copy for gray input)."""
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 2 and frame.size:
        return frame
    bgr = validate_frame(frame)
    import cv2

    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


class FaceFinder(Protocol):
    """Anything with :meth:`detect`: faces in one frame, best score first (as a
    :class:`~areya.detectors.base.FaceDetector`)."""

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]: ...
