"""The face detector interface, :class:`FaceDetector` (what it returns and accepts: :mod:`areya.detectors.boxes`)."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from areya.detectors.boxes import FaceBox
from areya.detectors.zones import DEFAULT_ZONE_MODE, DEFAULT_ZONE_PAD, detect_in_zones


class FaceDetector(abc.ABC):
    """A face detection backend.  Instances are not thread-safe: use one per thread.

    ``zone_mode`` / ``zone_pad`` / ``zone_window_px``: how :meth:`detect_in_zones` uses a camera's bed zones (set
    by :func:`areya.detectors.create_detector` from the options of the same names).
    """

    name: str = "?"
    zone_mode: str = DEFAULT_ZONE_MODE
    zone_pad: float = DEFAULT_ZONE_PAD
    zone_window_px: int = 0
    crop_detector: FaceDetector | None = None  # run on zone crops instead of this one (zone_detector option)
    redetect_roll: int = 0  # rolled faces found again upright (areya.detectors.rotation.redetect_rolled); 0: off
    zone_turns: tuple[int, ...] = ()  # zone windows without a face looked at turned by these (degrees cw)
    zone_relook: float = 0.0  # zones without a face looked at again in windows of this share of the side; 0: off
    orient_check: float = 0.0  # faces turned the way the detector is surest of (rotation.check_orientation); 0: off

    @abc.abstractmethod
    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        """Faces in one frame, best score first.  Bad input raises ``ValueError``."""

    def detect_batch(self, frames: Sequence[np.ndarray] | Iterable[np.ndarray]) -> list[list[FaceBox]]:
        """Faces of several frames, one list per frame (backends may override to batch)."""
        return [self.detect(f) for f in frames]

    def detect_in_zones(
        self, frame_bgr: np.ndarray, zones: Sequence[Any], *, turns: Sequence[int] | None = None
    ) -> list[FaceBox]:
        """Faces of a frame using its bed zones (normalized ``x0, y0, x1, y1``) as :attr:`zone_mode` says:
        ``frame`` whole frame only, ``zones`` each zone's crop only, ``both``; see :mod:`areya.detectors.zones`.
        ``turns``: the turned looks at windows without a face (None: :attr:`zone_turns`)."""
        return detect_in_zones(
            self,
            frame_bgr,
            zones,
            mode=self.zone_mode,
            pad=self.zone_pad,
            window_px=self.zone_window_px,
            crop_detector=self.crop_detector,
            redetect_roll=self.redetect_roll,
            turns=self.zone_turns if turns is None else turns,
            relook=self.zone_relook,
            orient_check=self.orient_check,
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (optional)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
