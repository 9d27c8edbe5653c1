"""OpenCV Haar cascade face detector (``haarcascade_frontalface_default.xml``): no model download, weaker."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from areya.detectors.base import FaceDetector
from areya.detectors.boxes import FaceBox, validate_gray

CASCADE_FILE = "haarcascade_frontalface_default.xml"


def cascade_path() -> Path:
    """The frontal-face cascade shipped with OpenCV 4.x (``cv2.data.haarcascades``)."""
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise RuntimeError(
            f"this OpenCV ({cv2.__version__}) ships no Haar cascades (cv2.data.haarcascades is missing; "
            "OpenCV 5 dropped them): use the blazeface detector, or pass cascade_file=... to the haar detector"
        )
    path = Path(folder) / CASCADE_FILE
    if not path.is_file():
        raise RuntimeError(f"Haar cascade file not found: {path}")
    return path


class HaarDetector(FaceDetector):
    """Viola-Jones frontal faces.  ``max_width``: frames wider than this are downscaled first (speed);
    ``equalize``: histogram-equalize the gray frame first.

    Haar gives no confidence: a box's score is its number of merged neighbour detections divided by
    ``4 * min_neighbors``, capped at 1.
    """

    name = "haar"

    def __init__(
        self,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        max_width: int = 640,
        equalize: bool = False,
        cascade_file: str | Path | None = None,
    ) -> None:
        import cv2

        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if min_neighbors < 0 or min_size < 1 or max_width < 32:
            raise ValueError("min_neighbors must be >= 0, min_size >= 1, max_width >= 32")
        path = Path(cascade_file) if cascade_file else cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"could not load Haar cascade {path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_width = max_width
        self.equalize = equalize

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        import cv2

        gray = validate_gray(frame_bgr)
        h, w = gray.shape
        scale = 1.0
        if w > self.max_width:
            scale = self.max_width / w
            gray = cv2.resize(gray, (self.max_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if self.equalize:  # helps in dim scenes, hurts when a flat background dominates the histogram
            gray = cv2.equalizeHist(gray)
        min_size = max(1, round(self.min_size * scale))
        rects, neighbours = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_size, min_size)
        )
        norm = 4.0 * max(self.min_neighbors, 1)
        boxes = [
            FaceBox(
                round(x / scale), round(y / scale), round(bw / scale), round(bh / scale), min(1.0, float(n) / norm)
            ).clip(w, h)
            for (x, y, bw, bh), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).ravel(), strict=True)
        ]
        return sorted(boxes, key=lambda b: -b.score)
