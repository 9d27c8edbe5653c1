"""Draw face boxes and their labels on a frame (``areya predict --out``, the dashboard)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from areya.detectors.boxes import FaceBox, validate_frame

Color = tuple[int, int, int]  # BGR
GREEN: Color = (60, 200, 60)
RED: Color = (40, 40, 230)


def draw_faces(
    frame: np.ndarray,
    boxes: Sequence[FaceBox],
    labels: Sequence[str | Sequence[str] | None] | None = None,
    colors: Sequence[Color] | None = None,
) -> np.ndarray:
    """A BGR copy of ``frame`` with each box outlined and its label (one or more lines) written beside it.

    ``labels`` and ``colors`` give one entry per box (missing: no label, green).  ``frame`` is not modified.
    """
    import cv2

    img = validate_frame(frame).copy()
    h, w = img.shape[:2]
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"{len(labels)} labels for {len(boxes)} boxes")
    if colors is not None and len(colors) != len(boxes):
        raise ValueError(f"{len(colors)} colors for {len(boxes)} boxes")
    thickness = max(1, round(max(h, w) / 400))
    font_scale = max(0.4, max(h, w) / 1400)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, box in enumerate(boxes):
        color = colors[i] if colors is not None else GREEN
        b = box.clip(w, h)
        cv2.rectangle(img, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thickness, cv2.LINE_AA)
        label = labels[i] if labels is not None else None
        if not label:
            continue
        lines = [label] if isinstance(label, str) else [str(s) for s in label]
        sizes = [cv2.getTextSize(t, font, font_scale, 1) for t in lines]
        line_h = max(s[0][1] + s[1] for s in sizes) + 4
        block_w = max(s[0][0] for s in sizes) + 6
        block_h = line_h * len(lines) + 2
        # above the box if there is room, else below it; kept inside the frame horizontally
        top = b.y - block_h if b.y - block_h >= 0 else min(b.y + b.h, max(h - block_h, 0))
        left = min(max(b.x, 0), max(w - block_w, 0))
        cv2.rectangle(img, (left, top), (left + block_w, top + block_h), color, -1)
        for j, text in enumerate(lines):
            base = top + (j + 1) * line_h - 4
            cv2.putText(img, text, (left + 3, base), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img
